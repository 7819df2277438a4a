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
            Box::new(Pipelined::spawn(Box::new(
                flate2::read::MultiGzDecoder::new(stream),
            ))),
            Compression::Gzip,
        )
    } else if head.starts_with(&ZSTD_MAGIC) {
        (
            Box::new(Pipelined::spawn(Box::new(
                zstd::stream::read::Decoder::new(stream)?,
            ))),
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
/// about `PIPELINE_DEPTH` + 2 chunks of [`CHUNK`]).
const PIPELINE_DEPTH: usize = 4;

/// Size of one decompressed chunk handed between the threads.
const CHUNK: usize = 512 * 1024;

/// Decompression on its own thread, handing chunks through a bounded channel: on a multi-core
/// machine inflating and parsing overlap instead of taking turns. The reader borrows lines
/// straight out of the chunks (it is a [`BufRead`], no second buffer and no second copy), and
/// hands spent chunks back for reuse, so the steady state allocates nothing.
struct Pipelined {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    recycle: std::sync::mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Pipelined {
    fn spawn(mut inner: Box<dyn Read + Send>) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(PIPELINE_DEPTH);
        let (recycle, spent) = std::sync::mpsc::sync_channel::<Vec<u8>>(PIPELINE_DEPTH + 2);
        std::thread::spawn(move || loop {
            let mut chunk = spent.try_recv().unwrap_or_default();
            // Zero-filled once per buffer (its first use), not per chunk.
            chunk.resize(CHUNK, 0);
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
            recycle,
            cur: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl Read for Pipelined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = buf.len().min(avail.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Pipelined {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(&[]);
            }
            match self.rx.recv() {
                Ok(Ok(c)) => {
                    let spent = std::mem::replace(&mut self.cur, c);
                    if spent.capacity() > 0 {
                        // The thread may have finished; then the buffer is simply dropped.
                        let _ = self.recycle.try_send(spent);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(&[]);
                }
            }
        }
        Ok(&self.cur[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.cur.len());
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
///
/// A line that lies whole in the inner reader's buffer (nearly all of them) is handed out as a
/// slice of that buffer, without a copy; it is consumed on the next call. Only a line that
/// straddles two buffer fills is copied together.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    line: u64,
    max: usize,
    /// Bytes of the inner buffer handed out by the last call, consumed on the next one.
    pending: usize,
}

fn fill<R: BufRead>(r: &mut R) -> io::Result<&[u8]> {
    loop {
        match r.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    r.fill_buf()
}

fn strip_cr(t: &[u8]) -> &[u8] {
    match t.split_last() {
        Some((b'\r', rest)) => rest,
        _ => t,
    }
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
            pending: 0,
        }
    }

    /// The number of the line last returned (1-based; 0 before the first).
    pub fn line_no(&self) -> u64 {
        self.line
    }

    /// The next line, `None` at the end. I/O and decompression errors (a truncated gzip
    /// stream, say) come back as errors.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        if self.pending > 0 {
            self.inner.consume(self.pending);
            self.pending = 0;
        }
        // Fast path: the whole line is in the inner buffer.
        let found = match self.inner.fill_buf() {
            Ok(avail) => memchr::memchr(b'\n', avail).filter(|&i| i <= self.max),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => None, // retried below
            Err(e) => return Err(e),
        };
        if let Some(i) = found {
            self.pending = i + 1;
            self.line += 1;
            // The same buffer again (nothing was consumed, so no I/O).
            let avail = self.inner.fill_buf()?;
            let text = avail.get(..i).ok_or_else(|| {
                io::Error::other("inner reader changed its buffer without a consume")
            })?;
            return Ok(Some((self.line, Line::Text(strip_cr(text)))));
        }
        self.buf.clear();
        let mut total = 0usize;
        let mut too_long = false;
        let mut any = false;
        loop {
            let avail = fill(&mut self.inner)?;
            if avail.is_empty() {
                break;
            }
            any = true;
            let (chunk, done) = match memchr::memchr(b'\n', avail) {
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
        Ok(Some((self.line, Line::Text(strip_cr(&self.buf)))))
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

    /// Lines borrowed from the inner buffer and lines pieced together across buffer fills
    /// (any buffer size) come out the same, with the same numbers.
    #[test]
    fn lines_across_buffer_fills() {
        let input: &[u8] = b"first\r\n\nsecond line\n0123456789abcdef\n\r\nx\ny\r\nno newline";
        let want = [
            "first",
            "",
            "second line",
            "<16>",
            "",
            "x",
            "y",
            "no newline",
        ];
        for cap in 1..=input.len() + 1 {
            let mut r = LineReader::with_max(io::BufReader::with_capacity(cap, input), 12);
            let mut got = Vec::new();
            while let Some((n, l)) = r.next_line().unwrap() {
                assert_eq!(n as usize, got.len() + 1);
                got.push(match l {
                    Line::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    Line::TooLong(n) => format!("<{n}>"),
                });
            }
            assert_eq!(got, want, "buffer of {cap} bytes");
            assert!(r.next_line().unwrap().is_none());
        }
    }

    /// The decompressing thread's chunks (and the reused buffers) join up exactly.
    #[test]
    fn pipelined_chunks() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("d{i}.xyz.\t3600\tin\tns\tns{}.example.\n", i % 7).into_bytes())
            .collect();
        assert!(text.len() > 2 * CHUNK * (PIPELINE_DEPTH + 2));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let (r, c) = decompress(Box::new(io::Cursor::new(gz.finish().unwrap()))).unwrap();
        assert_eq!(c, Compression::Gzip);
        let mut lr = LineReader::new(r);
        let mut n = 0usize;
        let mut want = text.split(|&b| b == b'\n');
        while let Some((_, l)) = lr.next_line().unwrap() {
            assert_eq!(l, Line::Text(want.next().unwrap()));
            n += 1;
        }
        assert_eq!(n, 200_000);
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
