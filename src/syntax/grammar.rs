//! The pest parser generated from `grammar/concsh.pest`.

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/concsh.pest"]
pub struct ConcshParser;
