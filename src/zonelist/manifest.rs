//! The sources manifest (`zonelists/sources.toml`): every input the crawl may read, by name.
//!
//! A survey must say which zones it covered and where they came from; naming each source once
//! in a reviewed file (rather than paths on command lines) makes that reproducible. A source
//! is a local file or glob; a zone-transfer source also names the server, the zone and an
//! optional TSIG key file, and `zonelists fetch` writes the transfer to the source's path.
//! Relative paths are resolved against the manifest's directory.
//!
//! ```toml
//! [source.sample]
//! path = "sample.txt"
//!
//! [source.se]
//! path = "zones/se.zone"
//! axfr = { server = "zonedata.iis.se", zone = "se." }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

/// Largest manifest read (it is a short, hand-written file).
const MAX_MANIFEST: u64 = 1 << 20;

/// The parsed manifest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Sources by name.
    #[serde(default)]
    pub source: BTreeMap<String, SourceSpec>,
    /// The manifest's directory (relative paths are resolved against it).
    #[serde(skip)]
    pub base: PathBuf,
}

/// One named source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// A file, or a glob (`*`, `?` in the last path component) of files.
    pub path: String,
    /// Free text: what it is, who provides it, its terms of use.
    #[serde(default)]
    pub description: Option<String>,
    /// `auto` (default), `zone` or `list`.
    #[serde(default)]
    pub format: Option<String>,
    /// Where to fetch it by zone transfer, if anywhere.
    #[serde(default)]
    pub axfr: Option<AxfrSpec>,
}

/// A zone-transfer source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxfrSpec {
    /// `HOST`, `ADDR` or `ADDR:PORT` (port 53 by default).
    pub server: String,
    /// The zone, e.g. `se.`.
    pub zone: String,
    /// A TSIG key file (`key "name" { algorithm hmac-sha256; secret "…"; };`).
    #[serde(default)]
    pub tsig_key: Option<String>,
}

impl Manifest {
    /// Reads and checks a manifest.
    pub fn load(path: &Path) -> Result<Manifest> {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .take(MAX_MANIFEST)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut m: Manifest =
            toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        m.base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        for (name, s) in &m.source {
            if let Some(f) = &s.format {
                f.parse::<super::Format>()
                    .map_err(|e| anyhow!("{}: source {name}: {e}", path.display()))?;
            }
            if s.axfr.is_some() && has_glob(&s.path) {
                bail!(
                    "{}: source {name}: a zone-transfer source needs one path, not a glob",
                    path.display()
                );
            }
        }
        Ok(m)
    }

    /// A source by name, with a helpful error listing the names.
    pub fn get(&self, name: &str) -> Result<&SourceSpec> {
        self.source.get(name).ok_or_else(|| {
            anyhow!(
                "no source {name:?} in the manifest (known: {})",
                self.source.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// A manifest path made absolute against the manifest's directory.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// The files of a source: its path, or the files its glob matches, sorted.
    pub fn files(&self, name: &str) -> Result<Vec<PathBuf>> {
        let spec = self.get(name)?;
        let path = self.resolve(&spec.path);
        if !has_glob(&spec.path) {
            return Ok(vec![path]);
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let pat = path
            .file_name()
            .and_then(|f| f.to_str())
            .ok_or_else(|| anyhow!("bad glob {}", spec.path))?;
        if dir.to_string_lossy().contains(['*', '?']) {
            bail!("glob {}: wildcards only in the file name", spec.path);
        }
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let e = e?;
            if let Some(f) = e.file_name().to_str() {
                if glob_match(pat.as_bytes(), f.as_bytes()) {
                    out.push(e.path());
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

fn has_glob(p: &str) -> bool {
    p.contains(['*', '?'])
}

/// `*` (any run) and `?` (one byte) glob matching.
pub fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some(p);
            mark = i;
            p += 1;
        } else if let Some(sp) = star {
            p = sp + 1;
            mark += 1;
            i = mark;
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*.zone.gz", b"com.zone.gz"));
        assert!(glob_match(b"c?m*", b"com.txt"));
        assert!(!glob_match(b"*.gz", b"com.zone"));
        assert!(glob_match(b"*", b""));
    }

    #[test]
    fn shipped_manifest_parses() {
        let p = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/zonelists/sources.toml"
        ));
        let m = Manifest::load(p).unwrap();
        assert!(m.source.contains_key("sample"));
        assert!(m.files("sample").unwrap()[0].exists());
        assert!(m.get("nope").is_err());
    }
}
