//! Opening an input: a file or stdin (`-`), decompressed by its magic bytes (gzip, zstd), and
//! read as bounded lines.
//!
//! Registries publish zones compressed, and file names lie (`.txt` that is gzip'd, `.gz` that
//! is not); the first bytes do not. Lines are bounded so a hostile file cannot make the reader
//! grow without limit: an overlong line is reported and skipped without being stored.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// Longest line kept (64 KiB): far above any real record line (an RRSIG or a 4096-bit DNSKEY
/// takes under 1 KiB), far below memory trouble.
pub const MAX_LINE: usize = 64 * 1024;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const BUF: usize = 256 * 1024;

/// How an input was compressed, as told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (RFC 1952), possibly several members concatenated.
    Gzip,
    /// Zstandard (RFC 8878).
    Zstd,
}

/// Opens `path` (`-` for stdin) and returns a buffered, decompressed reader and what
/// compression was detected.
pub fn open(path: &str) -> io::Result<(Box<dyn BufRead + Send>, Compression)> {
    let raw: Box<dyn Read + Send> = if path == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(Path::new(path))?)
    };
    decompress(raw)
}

/// Wraps any byte stream, detecting gzip or zstd by magic bytes.
pub fn decompress(raw: Box<dyn Read + Send>) -> io::Result<(Box<dyn BufRead + Send>, Compression)> {
    let mut inner = BufReader::with_capacity(BUF, raw);
    // fill_buf may return fewer bytes than the magic even if more follow (a pipe): read
    // until 4 bytes or the end, then put them back in front of the rest.
    let mut head = Vec::with_capacity(4);
    while head.len() < 4 {
        let buf = match inner.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        let take = (4 - head.len()).min(buf.len());
        head.extend_from_slice(&buf[..take]);
        inner.consume(take);
    }
    let stream: Box<dyn Read + Send> = Box::new(io::Cursor::new(head.clone()).chain(inner));
    Ok(if head.starts_with(&GZIP_MAGIC) {
        (
            Box::new(BufReader::with_capacity(
                BUF,
                Pipelined::spawn(Box::new(flate2::read::MultiGzDecoder::new(stream))),
            )),
            Compression::Gzip,
        )
    } else if head.starts_with(&ZSTD_MAGIC) {
        (
            Box::new(BufReader::with_capacity(
                BUF,
                Pipelined::spawn(Box::new(zstd::stream::read::Decoder::new(stream)?)),
            )),
            Compression::Zstd,
        )
    } else {
        (
            Box::new(BufReader::with_capacity(BUF, stream)),
            Compression::None,
        )
    })
}

/// Chunks in flight between the decompressing thread and the reader (bounds the memory to
/// `PIPELINE_DEPTH` × 256 KiB).
const PIPELINE_DEPTH: usize = 4;

/// Decompression on its own thread, handing 256 KiB chunks through a bounded channel: on a
/// multi-core machine inflating and parsing overlap instead of taking turns.
struct Pipelined {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Pipelined {
    fn spawn(mut inner: Box<dyn Read + Send>) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(PIPELINE_DEPTH);
        std::thread::spawn(move || loop {
            let mut chunk = vec![0u8; BUF];
            let mut filled = 0;
            let res = loop {
                match inner.read(&mut chunk[filled..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        filled += n;
                        if filled == chunk.len() {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            chunk.truncate(filled);
            let end = filled == 0;
            if filled > 0 && tx.send(Ok(chunk)).is_err() {
                return; // the reader is gone
            }
            if let Err(e) = res {
                let _ = tx.send(Err(e));
                return;
            }
            if end {
                return;
            }
        });
        Pipelined {
            rx,
            cur: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl Read for Pipelined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(c)) => {
                    self.cur = c;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// One line from [`LineReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line (without its `\n` or `\r\n`).
    Text(&'a [u8]),
    /// A line longer than [`MAX_LINE`]: its bytes were skipped, not stored.
    TooLong(usize),
}

/// Reads lines of at most [`MAX_LINE`] bytes, counting them (1-based), in memory that does not
/// grow with the line or the file.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    line: u64,
    max: usize,
}

impl<R: BufRead> LineReader<R> {
    /// A reader with the default bound.
    pub fn new(inner: R) -> Self {
        Self::with_max(inner, MAX_LINE)
    }

    /// A reader with a custom bound (for tests).
    pub fn with_max(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::with_capacity(256),
            line: 0,
            max,
        }
    }

    /// The number of the line last returned (1-based; 0 before the first).
    pub fn line_no(&self) -> u64 {
        self.line
    }

    /// The next line, `None` at the end. I/O and decompression errors (a truncated gzip
    /// stream, say) come back as errors.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        self.buf.clear();
        let mut total = 0usize;
        let mut too_long = false;
        let mut any = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            any = true;
            let (chunk, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (&avail[..i], Some(i + 1)),
                None => (avail, None),
            };
            total += chunk.len();
            if !too_long {
                if total > self.max {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            let used = done.unwrap_or(avail.len());
            self.inner.consume(used);
            if done.is_some() {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.line += 1;
        if too_long {
            return Ok(Some((self.line, Line::TooLong(total))));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some((self.line, Line::Text(&self.buf))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(input: &[u8], max: usize) -> Vec<String> {
        let mut r = LineReader::with_max(io::Cursor::new(input.to_vec()), max);
        let mut out = Vec::new();
        while let Some((_, l)) = r.next_line().unwrap() {
            out.push(match l {
                Line::Text(t) => String::from_utf8_lossy(t).into_owned(),
                Line::TooLong(n) => format!("<{n}>"),
            });
        }
        out
    }

    #[test]
    fn bounded_lines() {
        assert_eq!(lines(b"a\r\nbb\n\nc", 8), ["a", "bb", "", "c"]);
        assert_eq!(lines(b"0123456789\nok\n", 8), ["<10>", "ok"]);
        assert!(lines(b"", 8).is_empty());
    }

    fn read_all(data: Vec<u8>) -> (String, Compression) {
        let (mut r, c) = decompress(Box::new(io::Cursor::new(data))).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        (s, c)
    }

    #[test]
    fn magic_bytes() {
        let text = "example.com\nexample.org\n";
        assert_eq!(read_all(text.into()), (text.into(), Compression::None));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(read_all(gz), (text.into(), Compression::Gzip));
        let zs = zstd::stream::encode_all(text.as_bytes(), 3).unwrap();
        assert_eq!(read_all(zs), (text.into(), Compression::Zstd));
        assert_eq!(read_all(b"x".to_vec()), ("x".into(), Compression::None));
    }
}
