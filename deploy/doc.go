// Package deploy holds no Go code: it keeps braid's deployment files
// (systemd units, container image, example configurations, the
// multi-uplink guide, OpenWrt service, alerting rules) next to the tests
// that check them, so a change to a flag or a metric that breaks a
// shipped file fails CI instead of a user's upgrade.
package deploy
