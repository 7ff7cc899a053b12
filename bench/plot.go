package bench

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Series is one goodput line of a plot.
type Series struct {
	Name string
	// Offset is subtracted from every point's T (e.g. the fault time, so 0
	// on the x axis is the fault).
	Offset float64
	Points []Point
}

// Mark is a labelled vertical line on a plot (a fault, a restore).
type Mark struct {
	T     float64
	Label string
}

// PlotOptions describe one goodput plot.
type PlotOptions struct {
	Title, XLabel string
	Series        []Series
	Marks         []Mark
	// XMin and XMax crop the x axis; both zero means the whole data.
	XMin, XMax float64
}

// PlotGoodput writes a PNG of goodput (Mbit/s) over time to path.
func PlotGoodput(path string, o PlotOptions) error {
	p := plot.New()
	p.Title.Text = o.Title
	p.X.Label.Text = o.XLabel
	p.Y.Label.Text = "goodput (Mbit/s, 250 ms buckets)"
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	crop := o.XMin != 0 || o.XMax != 0
	ymax := 1.0
	for i, s := range o.Series {
		var xys plotter.XYs
		for _, pt := range s.Points {
			x := pt.T - s.Offset
			if crop && (x < o.XMin || x > o.XMax) {
				continue
			}
			xys = append(xys, plotter.XY{X: x, Y: pt.Mbps})
			ymax = max(ymax, pt.Mbps)
		}
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("bench: plot %s: %w", s.Name, err)
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		l.Dashes = plotutil.Dashes(i)
		p.Add(l)
		p.Legend.Add(s.Name, l)
	}
	for _, m := range o.Marks {
		l, err := plotter.NewLine(plotter.XYs{{X: m.T, Y: 0}, {X: m.T, Y: ymax * 1.05}})
		if err != nil {
			return fmt.Errorf("bench: plot mark: %w", err)
		}
		l.Color = color.Gray{Y: 96}
		l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(l)
		lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: m.T, Y: ymax * 1.05}}, Labels: []string{" " + m.Label}})
		if err == nil {
			lbl.TextStyle[0].XAlign = draw.XLeft
			p.Add(lbl)
		}
	}
	p.Y.Min = 0
	p.Y.Max = ymax * 1.3 // room for the legend
	p.Y.Tick.Marker = stepTicks{}
	if crop {
		p.X.Min, p.X.Max = o.XMin, o.XMax
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("bench: plot: %w", err)
	}
	if err := p.Save(9*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("bench: plot %s: %w", path, err)
	}
	return nil
}

// stepTicks labels the axis every 1, 2 or 5 × 10^k units, about five
// labels in all (gonum's default gives only two on some ranges).
type stepTicks struct{}

// Ticks implements plot.Ticker.
func (stepTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return nil
	}
	raw := (hi - lo) / 5
	base := math.Pow(10, math.Floor(math.Log10(raw)))
	step := base
	for _, m := range []float64{2, 5, 10} { // the nice step closest to raw
		if math.Abs(m*base-raw) < math.Abs(step-raw) {
			step = m * base
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step/1e9; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 6, 64)})
	}
	return ticks
}
