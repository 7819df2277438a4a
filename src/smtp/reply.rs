//! Bounded, incremental SMTP reply parser (RFC 5321 §4.2).
//!
//! The probe talks to servers it does not control, so every byte is
//! hostile until parsed. This parser is pure (no I/O): bytes are pushed in
//! with [`ReplyParser::feed`] as they arrive, and it either completes a
//! reply, asks for more, or fails with a precise [`ReplyError`]. It never
//! holds more than `max_line_len` (+1 for a pending CR) bytes of an
//! unfinished line and never more than `max_reply_lines` lines, so a server
//! that streams an endless line or an endless multi-line reply costs a
//! bounded amount of memory and is cut off as soon as a limit is crossed.
//!
//! Grammar accepted (RFC 5321 §4.2, with bare LF tolerated as a line end):
//!
//! ```text
//! Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//!              Reply-code [ SP textstring ] CRLF
//! Reply-code = %x32-35 %x30-35 %x30-39
//! ```
//!
//! Every line of one reply must carry the same code. Text is decoded as
//! UTF-8 lossily (invalid bytes become U+FFFD).

use std::fmt;

/// Size limits applied while parsing one reply.
///
/// Exists so the caller (the probe, driven by `ProbeConfig`) decides the
/// bounds, and tests can exercise them with small numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Maximum bytes in one line, not counting the CRLF / LF terminator.
    pub max_line_len: usize,
    /// Maximum number of lines in one (multi-line) reply.
    pub max_reply_lines: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_line_len: 4096,
            max_reply_lines: 128,
        }
    }
}

/// One complete SMTP reply.
///
/// Exists as the typed result of parsing, so the probe reasons about codes
/// and text lines rather than raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code shared by all lines (e.g. 250).
    pub code: u16,
    /// The text of each line, after the code and its separator, lossily
    /// decoded as UTF-8. Always at least one element (possibly empty).
    pub lines: Vec<String>,
}

impl Reply {
    /// True for 2xx (positive completion) replies.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// True for 4xx / 5xx (transient or permanent negative) replies.
    pub fn is_negative(&self) -> bool {
        (400..600).contains(&self.code)
    }

    /// Text of the first line (empty string if the line had no text).
    pub fn first_line(&self) -> &str {
        self.lines.first().map(String::as_str).unwrap_or("")
    }
}

/// Why a reply could not be parsed.
///
/// Exists so the probe can map each failure to a distinct, reportable
/// error kind instead of a generic "bad reply".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// A line exceeded `max_line_len` bytes.
    LineTooLong { limit: usize },
    /// The reply had more than `max_reply_lines` lines.
    TooManyLines { limit: usize },
    /// A line did not match the reply grammar, or its code differed from
    /// the code of the earlier lines.
    Malformed(String),
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::LineTooLong { limit } => {
                write!(f, "reply line longer than {limit} bytes")
            }
            ReplyError::TooManyLines { limit } => {
                write!(f, "reply has more than {limit} lines")
            }
            ReplyError::Malformed(why) => write!(f, "malformed reply: {why}"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// Outcome of one [`ReplyParser::feed`] call.
///
/// Exists because the parser must tell the caller how many input bytes it
/// used: bytes after the end of a reply belong to whatever comes next and
/// must not be silently dropped (the probe treats them as pipelined data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feed {
    /// Number of bytes of the input that were consumed.
    pub consumed: usize,
    /// The completed reply, if the input finished one. When `Some`,
    /// `consumed` points just past the final line's terminator.
    pub reply: Option<Reply>,
}

/// Incremental parser for a single SMTP reply.
///
/// Exists so the network reader can push whatever chunk a `read` returned
/// and get bounded, exact parsing without ever buffering unbounded data.
/// After a reply completes (or an error is returned) the parser is spent;
/// create a new one for the next reply.
#[derive(Debug)]
pub struct ReplyParser {
    limits: ReplyLimits,
    /// Bytes of the current, unterminated line (bounded by max_line_len + 1).
    line: Vec<u8>,
    code: Option<u16>,
    lines: Vec<String>,
    done: bool,
}

impl ReplyParser {
    /// Creates a parser enforcing `limits`.
    pub fn new(limits: ReplyLimits) -> Self {
        ReplyParser {
            limits,
            line: Vec::new(),
            code: None,
            lines: Vec::new(),
            done: false,
        }
    }

    /// Pushes `input` into the parser.
    ///
    /// Consumes bytes up to and including the terminator of the reply's
    /// last line and stops there; if no reply completes, all input is
    /// consumed. Errors are returned as soon as a limit is crossed or a
    /// line is known to be malformed, without waiting for more input.
    pub fn feed(&mut self, input: &[u8]) -> Result<Feed, ReplyError> {
        if self.done {
            return Err(ReplyError::Malformed(
                "parser reused after completion".into(),
            ));
        }
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    self.push_partial(&rest[..nl])?;
                    pos += nl + 1;
                    if let Some(reply) = self.finish_line()? {
                        self.done = true;
                        return Ok(Feed {
                            consumed: pos,
                            reply: Some(reply),
                        });
                    }
                }
                None => {
                    self.push_partial(rest)?;
                    pos = input.len();
                }
            }
        }
        Ok(Feed {
            consumed: pos,
            reply: None,
        })
    }

    /// Appends bytes of the current line, enforcing the line limit. One
    /// extra byte is allowed for a CR that may turn out to precede the LF.
    fn push_partial(&mut self, bytes: &[u8]) -> Result<(), ReplyError> {
        let limit = self.limits.max_line_len;
        if self.line.len().saturating_add(bytes.len()) > limit.saturating_add(1) {
            return Err(ReplyError::LineTooLong { limit });
        }
        self.line.extend_from_slice(bytes);
        // Early detection: a partial line must start with a plausible code
        // prefix, so garbage is rejected before filling the line buffer.
        check_prefix(&self.line)?;
        Ok(())
    }

    /// Parses the completed line in `self.line`; returns the reply if this
    /// was its last line.
    fn finish_line(&mut self) -> Result<Option<Reply>, ReplyError> {
        let mut raw = std::mem::take(&mut self.line);
        if raw.last() == Some(&b'\r') {
            raw.pop();
        }
        let limit = self.limits.max_line_len;
        if raw.len() > limit {
            return Err(ReplyError::LineTooLong { limit });
        }
        if self.lines.len() >= self.limits.max_reply_lines {
            return Err(ReplyError::TooManyLines {
                limit: self.limits.max_reply_lines,
            });
        }
        let (code, last, text) = parse_line(&raw)?;
        match self.code {
            None => self.code = Some(code),
            Some(prev) if prev != code => {
                return Err(ReplyError::Malformed(format!(
                    "reply code changed from {prev} to {code} within one reply"
                )));
            }
            Some(_) => {}
        }
        self.lines.push(String::from_utf8_lossy(text).into_owned());
        if last {
            Ok(Some(Reply {
                code,
                lines: std::mem::take(&mut self.lines),
            }))
        } else {
            Ok(None)
        }
    }
}

/// Validates the code digits present so far in a partial line.
fn check_prefix(line: &[u8]) -> Result<(), ReplyError> {
    for (i, &b) in line.iter().take(4).enumerate() {
        let ok = match i {
            0 => (b'2'..=b'5').contains(&b),
            1 => (b'0'..=b'5').contains(&b),
            2 => b.is_ascii_digit(),
            // Position 3 may also be the CR of "ddd\r\n".
            _ => matches!(b, b'-' | b' ' | b'\r'),
        };
        if !ok {
            return Err(malformed_line(line));
        }
    }
    Ok(())
}

/// Parses one complete line (terminator removed) into
/// (code, is_last_line, text).
fn parse_line(raw: &[u8]) -> Result<(u16, bool, &[u8]), ReplyError> {
    if raw.len() < 3 {
        return Err(malformed_line(raw));
    }
    check_prefix(&raw[..3])?;
    let code = raw[..3]
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    match raw.get(3) {
        None => Ok((code, true, &raw[3..])),
        Some(b' ') => Ok((code, true, &raw[4..])),
        Some(b'-') => Ok((code, false, &raw[4..])),
        Some(_) => Err(malformed_line(raw)),
    }
}

/// Builds a Malformed error quoting (a bounded, escaped prefix of) the line.
fn malformed_line(line: &[u8]) -> ReplyError {
    const SHOW: usize = 40;
    let shown = String::from_utf8_lossy(&line[..line.len().min(SHOW)]).into_owned();
    let ellipsis = if line.len() > SHOW { "..." } else { "" };
    ReplyError::Malformed(format!("bad reply line {shown:?}{ellipsis}"))
}

/// Parses exactly one reply from the start of `input`.
///
/// Convenience for callers holding a complete buffer (and for tests).
/// Returns the reply and the number of bytes it occupied; an incomplete
/// reply is reported as `Ok(None)`.
pub fn parse_reply(
    input: &[u8],
    limits: ReplyLimits,
) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut parser = ReplyParser::new(limits);
    let feed = parser.feed(input)?;
    Ok(feed.reply.map(|r| (r, feed.consumed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(line: usize, lines: usize) -> ReplyLimits {
        ReplyLimits {
            max_line_len: line,
            max_reply_lines: lines,
        }
    }

    fn one(input: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
        parse_reply(input, ReplyLimits::default())
    }

    #[test]
    fn single_line() {
        let (r, n) = one(b"220 mx.example.com ESMTP\r\n").unwrap().unwrap();
        assert_eq!(r.code, 220);
        assert_eq!(r.lines, vec!["mx.example.com ESMTP"]);
        assert_eq!(n, 26);
        assert!(r.is_positive());
        assert!(!r.is_negative());
    }

    #[test]
    fn multi_line_ehlo() {
        let input = b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 STARTTLS\r\n";
        let (r, n) = one(input).unwrap().unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(
            r.lines,
            vec!["mx.example.com", "PIPELINING", "SIZE 1000", "STARTTLS"]
        );
        assert_eq!(n, input.len());
    }

    #[test]
    fn code_alone_and_empty_continuation() {
        let (r, _) = one(b"250-\r\n250\r\n").unwrap().unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.lines, vec!["", ""]);
        let (r, _) = one(b"221\n").unwrap().unwrap();
        assert_eq!(r.code, 221);
        assert_eq!(r.first_line(), "");
    }

    #[test]
    fn bare_lf_tolerated() {
        let (r, n) = one(b"250-a\n250 b\n").unwrap().unwrap();
        assert_eq!(r.lines, vec!["a", "b"]);
        assert_eq!(n, 12);
    }

    #[test]
    fn stops_at_end_of_reply() {
        let input = b"220 go ahead\r\nEXTRA";
        let (r, n) = one(input).unwrap().unwrap();
        assert_eq!(r.code, 220);
        assert_eq!(&input[n..], b"EXTRA");
    }

    #[test]
    fn incomplete_reply_needs_more() {
        assert_eq!(one(b"250-a\r\n250 b").unwrap(), None);
        assert_eq!(one(b"").unwrap(), None);
    }

    #[test]
    fn incremental_byte_by_byte() {
        let input = b"250-one\r\n250-two\r\n250 three\r\nX";
        let mut p = ReplyParser::new(ReplyLimits::default());
        let mut got = None;
        for (i, b) in input.iter().enumerate() {
            let f = p.feed(std::slice::from_ref(b)).unwrap();
            if let Some(r) = f.reply {
                assert_eq!(f.consumed, 1);
                got = Some((r, i + 1));
                break;
            }
        }
        let (r, end) = got.unwrap();
        assert_eq!(r.lines, vec!["one", "two", "three"]);
        assert_eq!(end, input.len() - 1);
        // A spent parser refuses more input instead of mixing replies.
        assert!(p.feed(b"250 x\r\n").is_err());
    }

    #[test]
    fn bad_codes() {
        for bad in [
            &b"abc hello\r\n"[..],
            b"120 hello\r\n",
            b"620 hello\r\n",
            b"260 hello\r\n",
            b"2x0 hello\r\n",
            b"25\r\n",
            b"2500 hello\r\n",
            b"250_hello\r\n",
            b" 250 hello\r\n",
        ] {
            match one(bad) {
                Err(ReplyError::Malformed(_)) => {}
                other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(bad)),
            }
        }
    }

    #[test]
    fn garbage_detected_before_line_end() {
        let mut p = ReplyParser::new(ReplyLimits::default());
        assert!(matches!(p.feed(b"HTTP/1.1"), Err(ReplyError::Malformed(_))));
    }

    #[test]
    fn mismatched_codes() {
        assert!(matches!(
            one(b"250-a\r\n251 b\r\n"),
            Err(ReplyError::Malformed(_))
        ));
    }

    #[test]
    fn empty_lines_rejected() {
        assert!(matches!(one(b"\r\n"), Err(ReplyError::Malformed(_))));
        assert!(matches!(one(b"\n"), Err(ReplyError::Malformed(_))));
        assert!(matches!(
            one(b"250-a\r\n\r\n250 b\r\n"),
            Err(ReplyError::Malformed(_))
        ));
    }

    #[test]
    fn over_long_line() {
        let mut input = b"250 ".to_vec();
        input.extend(std::iter::repeat_n(b'a', 100));
        input.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_reply(&input, lim(50, 10)),
            Err(ReplyError::LineTooLong { limit: 50 })
        );
        // Detected without a terminator, i.e. before buffering more.
        let mut p = ReplyParser::new(lim(50, 10));
        assert_eq!(
            p.feed(&input[..60]),
            Err(ReplyError::LineTooLong { limit: 50 })
        );
    }

    #[test]
    fn line_exactly_at_limit() {
        // 10 bytes of content + CRLF is fine with a 10-byte limit.
        let (r, _) = parse_reply(b"250 abcdef\r\n", lim(10, 10))
            .unwrap()
            .unwrap();
        assert_eq!(r.first_line(), "abcdef");
        let (r, _) = parse_reply(b"250 abcdef\n", lim(10, 10)).unwrap().unwrap();
        assert_eq!(r.first_line(), "abcdef");
        assert_eq!(
            parse_reply(b"250 abcdefg\r\n", lim(10, 10)),
            Err(ReplyError::LineTooLong { limit: 10 })
        );
        // A CR followed by more content does not get the extra byte.
        assert_eq!(
            parse_reply(b"250 abcdef\rg\n", lim(10, 10)),
            Err(ReplyError::LineTooLong { limit: 10 })
        );
    }

    #[test]
    fn too_many_lines() {
        let input = b"250-a\r\n250-b\r\n250-c\r\n250 d\r\n";
        assert_eq!(
            parse_reply(input, lim(100, 3)),
            Err(ReplyError::TooManyLines { limit: 3 })
        );
        assert!(parse_reply(input, lim(100, 4)).unwrap().is_some());
        // An endless reply fails once the limit is crossed.
        let mut p = ReplyParser::new(lim(100, 128));
        let mut err = None;
        for _ in 0..1000 {
            if let Err(e) = p.feed(b"250-x\r\n") {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(ReplyError::TooManyLines { limit: 128 }));
    }

    #[test]
    fn non_utf8_is_lossy() {
        let (r, _) = one(b"220 caf\xe9 \xff\xfe ok\r\n").unwrap().unwrap();
        assert_eq!(r.first_line(), "caf\u{fffd} \u{fffd}\u{fffd} ok");
    }

    #[test]
    fn negative_codes() {
        let (r, _) = one(b"454 4.7.0 TLS not available\r\n").unwrap().unwrap();
        assert!(r.is_negative());
        assert!(!r.is_positive());
        let (r, _) = one(b"554-no\r\n554 go away\r\n").unwrap().unwrap();
        assert_eq!(r.code, 554);
    }

    #[test]
    fn error_messages_escape_peer_bytes() {
        let err = one(b"\x1b[31mred\r\n").unwrap_err().to_string();
        assert!(!err.contains('\x1b'), "{err}");
    }
}
