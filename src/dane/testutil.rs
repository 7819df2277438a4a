//! Test PKI generated once per test binary with the `openssl` CLI.
//!
//! Exists so the unit tests exercise real certificates (real signatures,
//! validity periods, SANs) whose digests are computed by an independent
//! implementation (OpenSSL), not by the code under test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// All test certificates as DER, plus independently computed digests.
pub(crate) struct Pki {
    /// Unix time just after generation; every certificate's notBefore is at or before it.
    pub now: i64,
    /// Self-signed root "Test Root" (10 years).
    pub root: Vec<u8>,
    /// DER SPKI of the root key.
    pub root_spki: Vec<u8>,
    /// Intermediate "Test Inter", issued by root (10 years).
    pub inter: Vec<u8>,
    /// Leaf issued by inter: CN leaf.example, SAN DNS:mx.example.com, DNS:*.wild.example.
    pub leaf: Vec<u8>,
    /// Leaf issued by inter with no SAN, CN mx.example.com.
    pub leaf_cn_only: Vec<u8>,
    /// Leaf like `leaf` but valid for 10 days only.
    pub leaf_short: Vec<u8>,
    /// Intermediate "Test Inter Short", issued by root, valid for 10 days only.
    pub inter_short: Vec<u8>,
    /// Leaf (10 years, SAN mx.example.com) issued by inter_short.
    pub leaf_under_short: Vec<u8>,
    /// An impostor intermediate: subject "Test Inter" but a different key, self-signed.
    pub impostor: Vec<u8>,
    /// Leaf (SAN mx.example.com) whose issuer name is "Test Inter" but signed by the impostor key.
    pub leaf_by_impostor: Vec<u8>,
    /// Unrelated self-signed root "Other Root".
    pub other_root: Vec<u8>,
    /// openssl-computed SHA-256 of the leaf's DER SPKI.
    pub leaf_spki_sha256: Vec<u8>,
    /// openssl-computed SHA-256 of the leaf's DER certificate.
    pub leaf_cert_sha256: Vec<u8>,
    /// openssl-computed SHA-512 of the intermediate's DER SPKI.
    pub inter_spki_sha512: Vec<u8>,
}

static PKI: OnceLock<Pki> = OnceLock::new();

/// The shared test PKI (generated on first use).
pub(crate) fn pki() -> &'static Pki {
    PKI.get_or_init(generate)
}

fn run(dir: &Path, script: &str) -> Vec<u8> {
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("spawn sh/openssl");
    assert!(
        out.status.success(),
        "command failed: {script}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).expect("read generated file")
}

const EXT: &str = "\
[ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
[leaf]
basicConstraints=CA:FALSE
subjectAltName=DNS:mx.example.com,DNS:*.wild.example
[leafmx]
basicConstraints=CA:FALSE
subjectAltName=DNS:mx.example.com
[nosan]
basicConstraints=CA:FALSE
";

fn generate() -> Pki {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "dane-survey-test-{}-{}",
        std::process::id(),
        now.as_nanos()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    std::fs::write(dir.join("ext.cnf"), EXT).expect("write ext");
    let script = r#"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
selfsigned() { openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 -set_serial "$3" -addext basicConstraints=critical,CA:TRUE -out "$1.pem"; }
issue() { # name CN issuer days section serial [issuerkey]
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "${7:-$3}.key" -days "$4" -set_serial "$6" -extfile ext.cnf -extensions "$5" -out "$1.pem" 2>/dev/null
}
for k in root inter leaf leafcn leafshort intershort leafus impostor leafimp other; do key $k; done
selfsigned root "Test Root" 1
selfsigned impostor "Test Inter" 2
selfsigned other "Other Root" 3
issue inter "Test Inter" root 3650 ca 10
issue intershort "Test Inter Short" root 10 ca 11
issue leaf "leaf.example" inter 3650 leaf 100
issue leafcn "mx.example.com" inter 3650 nosan 101
issue leafshort "leaf.example" inter 10 leaf 102
issue leafus "leaf.example" intershort 3650 leafmx 103
issue leafimp "leaf.example" impostor 3650 leafmx 104
for c in root inter leaf leafcn leafshort intershort leafus impostor leafimp other; do openssl x509 -in $c.pem -outform DER -out $c.der; done
openssl pkey -in root.key -pubout -outform DER -out root.spki
openssl x509 -in leaf.pem -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary > leaf.spki.sha256
openssl dgst -sha256 -binary leaf.der > leaf.cert.sha256
openssl x509 -in inter.pem -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha512 -binary > inter.spki.sha512
"#;
    run(&dir, script);
    // "now" is taken after generation so every notBefore is <= now.
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let pki = Pki {
        now: i64::try_from(after.as_secs()).expect("time fits i64"),
        root: read(&dir, "root.der"),
        root_spki: read(&dir, "root.spki"),
        inter: read(&dir, "inter.der"),
        leaf: read(&dir, "leaf.der"),
        leaf_cn_only: read(&dir, "leafcn.der"),
        leaf_short: read(&dir, "leafshort.der"),
        inter_short: read(&dir, "intershort.der"),
        leaf_under_short: read(&dir, "leafus.der"),
        impostor: read(&dir, "impostor.der"),
        leaf_by_impostor: read(&dir, "leafimp.der"),
        other_root: read(&dir, "other.der"),
        leaf_spki_sha256: read(&dir, "leaf.spki.sha256"),
        leaf_cert_sha256: read(&dir, "leaf.cert.sha256"),
        inter_spki_sha512: read(&dir, "inter.spki.sha512"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    pki
}
