//! mmsim
