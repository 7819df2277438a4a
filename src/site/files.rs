//! The site's files: names derived safely from provider and domain names, the set of files
//! a build produces, and writing that set to the destination directory as a whole.
//!
//! Provider and domain names come from the snapshot (from MX records and zone lists, i.e.
//! from peers), so a file name is never the name itself: [`slug`] keeps a safe subset and adds
//! a digest whenever it had to change anything, which keeps distinct names distinct and makes
//! `..`, `/`, hidden files and over-long names impossible.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The file whose presence marks a directory as a site written by this tool, so a rebuild
/// may replace it (and nothing else is ever replaced).
pub const MARKER: &str = ".dane-survey-site";

/// Longest slug kept before the digest suffix.
const MAX_SLUG: usize = 80;

/// A file-name stem for `name`: lower-case `[a-z0-9._-]`, not starting with `.` or `-`, at most
/// `MAX_SLUG` characters; when anything had to change (or `name` is empty), `-` and the first
/// 8 bytes of the SHA-256 of `name` in hex are appended. So `mail.example` stays
/// `mail.example`, and two names that differ only in dropped characters still get two files.
pub fn slug(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            '.' => '.',
            _ => '_',
        })
        .collect();
    // No empty labels (`..`), no leading dot or dash (hidden files, options).
    while s.contains("..") {
        s = s.replace("..", "._");
    }
    if s.starts_with(['.', '-']) {
        s.insert(0, '_');
    }
    if s.len() > MAX_SLUG {
        s.truncate(MAX_SLUG);
    }
    if s != name || s.is_empty() {
        let d = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
        s.push('-');
        s.push_str(&hex::encode(&d.as_ref()[..8]));
    }
    s
}

/// Whether `rel` is a path this module would produce: `/`-separated components of
/// `[A-Za-z0-9._-]`, none empty, none starting with `.`.
pub fn is_safe_rel(rel: &str) -> bool {
    !rel.is_empty()
        && rel.split('/').all(|c| {
            !c.is_empty()
                && !c.starts_with('.')
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// Every file of the site, by path relative to the site root.
///
/// Exists so the pages are built purely (in memory, testable) and written in one step.
#[derive(Debug, Default)]
pub struct SiteFiles {
    /// Relative path → contents.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl SiteFiles {
    /// Adds a file; the path must be safe ([`is_safe_rel`]) and new.
    pub fn add(&mut self, rel: &str, bytes: impl Into<Vec<u8>>) -> Result<()> {
        if !is_safe_rel(rel) {
            bail!("unsafe site path {rel:?}");
        }
        if self.files.insert(rel.to_owned(), bytes.into()).is_some() {
            bail!("site path {rel:?} written twice");
        }
        Ok(())
    }

    /// The contents of `rel`, if the site has it.
    pub fn get(&self, rel: &str) -> Option<&[u8]> {
        self.files.get(rel).map(Vec::as_slice)
    }

    /// Total size in bytes.
    pub fn bytes(&self) -> u64 {
        self.files.values().map(|v| v.len() as u64).sum()
    }

    /// Writes the site to `dest`: into a new sibling directory first, which then takes
    /// `dest`'s place, so readers see the old site or the new one and no stale page of an
    /// earlier build survives. An existing `dest` is replaced only when it is empty or holds
    /// an earlier site (its [`MARKER`] file); anything else is refused.
    pub fn write(&self, dest: &Path) -> Result<()> {
        let dest = if dest.is_absolute() {
            dest.to_path_buf()
        } else {
            std::env::current_dir()?.join(dest)
        };
        let name = dest
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("bad destination {}", dest.display()))?
            .to_owned();
        let parent = dest.parent().unwrap_or(Path::new("/")).to_path_buf();
        fs::create_dir_all(&parent).with_context(|| format!("create {}", parent.display()))?;
        let replace = match fs::read_dir(&dest) {
            Ok(mut entries) => {
                let empty = entries.next().is_none();
                if !empty && !dest.join(MARKER).exists() {
                    bail!(
                        "{} exists and is not a site written by dane-survey (no {MARKER}); \
                         refusing to replace it",
                        dest.display()
                    );
                }
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e).with_context(|| format!("read {}", dest.display())),
        };
        let pid = std::process::id();
        let tmp = parent.join(format!(".{name}.new-{pid}"));
        let _ = fs::remove_dir_all(&tmp);
        let written = self.write_into(&tmp);
        if let Err(e) = written {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if replace {
            let old = parent.join(format!(".{name}.old-{pid}"));
            fs::rename(&dest, &old).with_context(|| format!("move {} aside", dest.display()))?;
            fs::rename(&tmp, &dest).with_context(|| format!("rename to {}", dest.display()))?;
            fs::remove_dir_all(&old).with_context(|| format!("remove {}", old.display()))?;
        } else {
            fs::rename(&tmp, &dest).with_context(|| format!("rename to {}", dest.display()))?;
        }
        Ok(())
    }

    fn write_into(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        fs::write(dir.join(MARKER), b"written by dane-survey site\n")?;
        for (rel, bytes) in &self.files {
            let path: PathBuf = dir.join(rel);
            if let Some(p) = path.parent() {
                fs::create_dir_all(p).with_context(|| format!("create {}", p.display()))?;
            }
            fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_safe_and_distinct() {
        assert_eq!(slug("mail.example"), "mail.example");
        assert_eq!(slug("xn--bcher-kva.example"), "xn--bcher-kva.example");
        for hostile in [
            "..",
            "../../etc/passwd",
            "/abs",
            ".hidden",
            "-rf",
            "a/b",
            "a\\b",
            "",
            "é.example",
            "a\u{0}b",
            &"x".repeat(300),
        ] {
            let s = slug(hostile);
            assert!(is_safe_rel(&s), "{hostile:?} → {s:?}");
            assert!(!s.contains('/') && !s.contains(".."), "{hostile:?} → {s:?}");
            assert!(s.len() <= MAX_SLUG + 17, "{s}");
        }
        assert_ne!(slug("Mail.Example"), slug("mail.example"));
        assert_ne!(slug("a/b"), slug("a_b"));
        assert_ne!(slug("a?b"), slug("a*b"));
    }

    #[test]
    fn safe_paths() {
        assert!(is_safe_rel("providers/mail.example.html"));
        assert!(!is_safe_rel("../x"));
        assert!(!is_safe_rel("a//b"));
        assert!(!is_safe_rel("/a"));
        assert!(!is_safe_rel("a/.b"));
        let mut f = SiteFiles::default();
        assert!(f.add("../x.html", "x").is_err());
        f.add("a.html", "x").unwrap();
        assert!(f.add("a.html", "y").is_err());
    }

    #[test]
    fn write_replaces_a_site_and_refuses_anything_else() {
        let base =
            std::env::temp_dir().join(format!("dane-survey-site-files-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let dest = base.join("site");
        let mut f = SiteFiles::default();
        f.add("index.html", "one").unwrap();
        f.add("providers/p.html", "p").unwrap();
        f.write(&dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("index.html")).unwrap(), "one");
        let mut g = SiteFiles::default();
        g.add("index.html", "two").unwrap();
        g.write(&dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("index.html")).unwrap(), "two");
        assert!(!dest.join("providers/p.html").exists(), "stale page kept");
        let other = base.join("home");
        fs::create_dir_all(&other).unwrap();
        fs::write(other.join("precious.txt"), "keep").unwrap();
        assert!(g.write(&other).is_err());
        assert!(other.join("precious.txt").exists());
        let leftovers: Vec<_> = fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        fs::remove_dir_all(&base).unwrap();
    }
}
