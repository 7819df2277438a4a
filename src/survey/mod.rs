//! Orchestration: the RFC 7672 decision procedure over DNS, SMTP and matching.
//!
//! `check` runs the procedure for one domain; the crawl (later) runs the same steps as
//! pipeline stages with memo tables, so both produce the same verdicts for the same facts.

mod check;
mod policy;

pub use check::{
    address_policy, check_domain, check_host, judge_domain, judge_domain_row, mx_stage,
    sorted_hosts, AddressReport, CheckContext, DirectProber, DomainJudgement, DomainOutcome,
    DomainReport, HostReport, HostSummary, MxHost, MxReport, Probed, Prober,
    MAX_ADDRESSES_PER_HOST, MAX_LEAF_NAMES, MAX_MX_HOSTS,
};
pub use policy::special_purpose;
