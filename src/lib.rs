pub mod collect;
