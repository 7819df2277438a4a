//! From the decision procedure's reports to snapshot rows (and back to what the memo needs).

use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::dns::Security;
use crate::snapshot::{DomainRow, HostRow, MxRecord, ProbeRow, TlsaLookup, UnusableTlsa};
use crate::survey::{AddressReport, DomainReport, HostReport, HostSummary};

/// Unix microseconds now.
pub fn now_micros() -> i64 {
    let t = time::OffsetDateTime::now_utc();
    (t.unix_timestamp_nanos() / 1000) as i64
}

/// The snake_case name serde gives a unit enum variant.
fn snake<T: Serialize>(t: &T) -> Option<String> {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

fn security(s: Option<Security>) -> Option<String> {
    s.map(|s| match s {
        Security::Secure => "secure".to_string(),
        Security::Insecure => "insecure".to_string(),
    })
}

/// The top-level domain of a name (`com` for `example.com`).
pub fn tld_of(domain: &str) -> String {
    domain
        .trim_end_matches('.')
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_string()
}

/// The domain row of a finished report (taken by value: its strings move into the row).
/// `checked_at` is left at 0 for the dispatcher to stamp, once per batch of finished domains
/// (a clock read per domain was 1% of a crawl's CPU).
pub fn domain_row(r: DomainReport, source: &str) -> DomainRow {
    let mut mx: Vec<MxRecord> =
        r.mx.records
            .into_iter()
            .map(|(p, exchange)| MxRecord {
                preference: i32::from(p),
                exchange,
            })
            .collect();
    // An RRset is a set: resolvers rotate its order, a snapshot must not.
    mx.sort_by(|a, b| (a.preference, &a.exchange).cmp(&(b.preference, &b.exchange)));
    DomainRow {
        tld: tld_of(&r.domain),
        domain: r.domain,
        source: source.to_string(),
        mx_lookup: r.mx.lookup,
        mx_security: security(r.mx.security),
        mx,
        primary_hosts: r.primary_hosts,
        provider: r.provider,
        providers: r.providers,
        verdict: r.verdict,
        all_hosts_verdict: r.all_hosts_verdict,
        reason: r.reason,
        checked_at: 0,
    }
}

/// The host row and the probe rows of a host report (its addresses in order).
pub fn host_rows(h: &HostReport, opted_out: bool) -> (HostRow, Vec<ProbeRow>) {
    // RRsets are sets: sorted, so two crawls of the same records write the same row.
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let mut unusable: Vec<UnusableTlsa> = h
        .unusable
        .iter()
        .map(|(record, reason)| UnusableTlsa {
            record: record.clone(),
            reason: reason.clone(),
        })
        .collect();
    unusable.sort_by(|a, b| a.record.cmp(&b.record));
    let row = HostRow {
        host: h.name.clone(),
        provider: crate::names::provider_of(&h.name),
        address_lookup: h.address_lookup.clone(),
        address_security: security(h.address_security),
        canonical: h.canonical.clone(),
        addresses: h.addresses.iter().map(|a| a.to_string()).collect(),
        tlsa_lookups: h
            .tlsa_lookups
            .iter()
            .map(|(name, result)| TlsaLookup {
                name: name.clone(),
                result: result.clone(),
            })
            .collect(),
        tlsa_base_domain: h.tlsa_base_domain.clone(),
        tlsa: sorted(&h.tlsa),
        tlsa_usable: sorted(&h.usable),
        tlsa_unusable: unusable,
        verdict: h.verdict,
        reason: h.reason.clone(),
        opted_out,
        resolved_at: now_micros(),
    };
    let sni = h.tlsa_base_domain.clone().unwrap_or_else(|| h.name.clone());
    let probes = h
        .probes
        .iter()
        .map(|a| probe_row(&h.name, &sni, a))
        .collect();
    (row, probes)
}

fn probe_row(host: &str, sni: &str, a: &AddressReport) -> ProbeRow {
    let mut row = ProbeRow {
        host: host.to_string(),
        address: a.address.to_string(),
        sni: sni.to_string(),
        verdict: a.verdict,
        reason: a.reason.clone(),
        matched: a.matched.clone(),
        stage_reached: None,
        banner: None,
        starttls_offered: None,
        tls_version: None,
        cipher: None,
        cert_sha256: Vec::new(),
        spki_sha256: Vec::new(),
        leaf_names: a.leaf_names.clone(),
        leaf_not_before: None,
        leaf_not_after: None,
        chain_not_after_min: None,
        leaf_3_1_1: a.leaf_3_1_1.clone(),
        error_stage: None,
        error_kind: None,
        error_message: None,
        reply_code: None,
        probed_at: None,
        duration_ms: None,
    };
    let Some(p) = &a.probe else { return row };
    row.stage_reached = snake(&p.stage_reached);
    row.banner = p.banner.clone();
    row.starttls_offered =
        (p.stage_reached >= crate::smtp::Stage::Ehlo).then_some(p.starttls_offered);
    row.tls_version = p.tls_version.clone();
    row.cipher = p.cipher.clone();
    for (i, der) in p.chain.iter().enumerate() {
        row.cert_sha256.push(hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            der,
        )));
        match X509Certificate::from_der(der) {
            Ok((_, c)) => {
                row.spki_sha256.push(hex::encode(ring::digest::digest(
                    &ring::digest::SHA256,
                    c.public_key().raw,
                )));
                let (nb, na) = (
                    c.validity().not_before.timestamp(),
                    c.validity().not_after.timestamp(),
                );
                if i == 0 {
                    row.leaf_not_before = Some(nb);
                    row.leaf_not_after = Some(na);
                }
                row.chain_not_after_min = Some(row.chain_not_after_min.map_or(na, |m| m.min(na)));
            }
            // Keep the lists aligned with the chain: an unparsable certificate has no key.
            Err(_) => row.spki_sha256.push(String::new()),
        }
    }
    if let Some(e) = &p.error {
        row.error_stage = snake(&e.stage);
        row.error_kind = snake(&e.kind);
        row.error_message = Some(e.message.clone());
        row.reply_code = e.reply_code.map(i32::from);
    }
    row.duration_ms = Some(p.elapsed_ms as i64);
    row.probed_at = Some(now_micros() - (p.elapsed_ms as i64) * 1000);
    row
}

/// The memo's view of a host written by an earlier run of the same snapshot (resume).
pub fn summary_from_rows(h: &HostRow, probes: &[&ProbeRow]) -> HostSummary {
    HostSummary {
        name: h.host.clone(),
        verdict: h.verdict,
        reason: h.reason.clone(),
        usable_tlsa: !h.tlsa_usable.is_empty(),
        addresses: probes
            .iter()
            .map(|p| (p.verdict, p.leaf_names.clone()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlds() {
        assert_eq!(tld_of("example.com"), "com");
        assert_eq!(tld_of("example.co.uk."), "uk");
        assert_eq!(tld_of("xn--p1ai"), "xn--p1ai");
    }
}
