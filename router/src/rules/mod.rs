//! Rule files and rule groups: the file model, and evaluating a group at one timestamp.

pub mod file;
pub mod group;
