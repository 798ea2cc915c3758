//! Inbound HTTP. Today the admin API on loopback; the public front door
//! (tracked links, the open pixel, unsubscribe, webhooks) joins it later as
//! its own router beside this one.

pub mod admin;
