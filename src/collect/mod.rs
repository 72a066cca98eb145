pub mod sockdiag;
