// Package link turns a raw TCP connection between a braid client and a
// braid exit into an encrypted, mutually authenticated link, and nothing
// else: what rides on it is package bond's business.
//
// Why not plain TLS client certificates or a pinned server certificate:
// braid's ends share one secret (from `braid keygen`), which is easy to
// copy into two configs and to rotate, while certificates need a CA or
// fingerprints. So TLS 1.3 (crypto/tls) provides encryption and a fresh
// session, and the shared secret provides authentication, bound to that
// session: each side sends an HMAC-SHA256, keyed with a key derived from
// the secret by HKDF, over the session's exported keying material (EKM,
// RFC 8446 §7.5) and its role. Consequences:
//
//   - A man in the middle must terminate TLS towards both ends, so the two
//     ends see different EKMs; the proof the client sends it is useless on
//     its own session with the exit, and it cannot forge one.
//   - A proof recorded from one session and replayed on another fails: the
//     EKM differs.
//   - The role is under the MAC, so a proof reflected back at its sender
//     fails too.
//   - The exit's certificate authenticates nothing and may be a
//     self-signed one generated in memory at start; the client then skips
//     chain verification. With a real certificate and Config.RootCAs or
//     Config.ServerName set, the client verifies it as usual, in addition.
//
// The exit stays silent to strangers: it writes no application byte to a
// peer that has not proved the secret, sends no session tickets, drops the
// TLS alerts it would send a non-TLS prober, and closes a failed connection
// without close_notify, after holding it open until the handshake deadline
// (Config.HoldOnFailure) so that timing tells a prober nothing either.
//
// # Protocol flow
//
//	client                                          exit
//	TCP connect  ─────────────────────────────────▶ accept (Listener:
//	                                                at most MaxPending in
//	                                                progress, each under
//	                                                HandshakeTimeout)
//	ClientHello  ─────────────────────────────────▶
//	             ◀───────────────────────────────── ServerHello … Finished
//	                                                (TLS 1.3 only; cert
//	                                                verified by the client
//	                                                only if configured)
//	Finished     ─────────────────────────────────▶
//	   both: ekm = ExportKeyingMaterial("EXPORTER-braid-link-auth-v1", nil, 32)
//	         key = HKDF-SHA256(secret, salt "braid link v1", info "braid link v1 auth key")
//	AUTH{1, client, HMAC(key, dom|1|client|ekm)} ─▶ verify (every accepted
//	                                                secret, constant time)
//	                                                wrong: say nothing,
//	                                                hold until deadline,
//	                                                close TCP
//	             ◀───────────────────────────────── AUTH{1, server, HMAC(key, dom|1|server|ekm)}
//	verify; wrong: close
//	────────── both: *tls.Conn handed to bond ──────────
//
// An AUTH message is 34 bytes, sent as TLS application data:
//
//	0         1        2                                      34
//	+---------+--------+--------------------------------------+
//	| version |  role  |          HMAC-SHA256 (32)            |
//	+---------+--------+--------------------------------------+
//
// version is Version (1); role is 1 for the client, 2 for the exit; dom is
// the fixed string "braid link v1 auth\x00".
//
// # Secret rotation
//
// The exit accepts Config.Secret and up to MaxAcceptSecrets older ones in
// Config.AcceptSecrets, trying each (all of them, to keep the timing flat),
// and answers with the one the client used. Put the new secret first on
// the exit, move clients over, then drop the old one.
package link
