//! kcm-store-sqlite (work in progress)
