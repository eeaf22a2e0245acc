//! Running jobs unattended inside `scimd serve`, apart from what a cycle is: the
//! scheduler (which jobs are due, under leases) and the notices (who hears about it).
//!
//! | module | job |
//! |---|---|
//! | `schedule` | the scheduler, a cycle under the job's lease, debounced tenant changes |
//! | `notify` | notices (quarantine, breaker, failure digests) by SMTP and signed webhook |

pub mod notify;
pub mod schedule;
