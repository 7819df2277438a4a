//! Orchestration: the RFC 7672 decision procedure over DNS, SMTP and matching.
//!
//! `check` runs the procedure for one domain; the crawl (later) runs the same steps as
//! pipeline stages with memo tables, so both produce the same verdicts for the same facts.

mod check;
mod policy;

pub use check::{
    check_domain, check_host, AddressReport, CheckContext, DomainReport, HostReport, MxReport,
};
pub use policy::special_purpose;
