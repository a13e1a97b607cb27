//! The embedded demo client portal (axum) with switchable planted flaws.
