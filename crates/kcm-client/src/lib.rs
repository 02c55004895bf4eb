//! kcm-client (work in progress)
