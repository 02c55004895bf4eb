//! kcm-aws-api (work in progress)
