//! kcm-rest-api (work in progress)
