//! kcm-keystore-software (work in progress)
