//! What every fake shares: the record of the calls it received and the failure of the next call
//! of an operation on demand (`fail_next`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;


use crate::error::{AwsError, AwsErrorKind};

/// One call a fake received: the operation and its key arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: &'static str,
    pub args: Vec<String>,
}

/// Something that happens elsewhere while a call is made (a user cancels the job meanwhile).
type Hook = Box<dyn FnOnce() + Send>;

/// The calls a fake received, the failures queued for its next calls, and what happens meanwhile.
#[derive(Default)]
pub struct Recorder {
    calls: Mutex<Vec<Call>>,
    faults: Mutex<HashMap<&'static str, VecDeque<AwsError>>>,
    hooks: Mutex<HashMap<&'static str, Hook>>,
}

impl Recorder {
    /// The next call of `operation` (a port method's name) fails with `error`.
    pub fn fail_next(&self, operation: &'static str, error: AwsError) {
        self.faults.lock().unwrap().entry(operation).or_default().push_back(error);
    }

    /// `meanwhile` runs when `operation` is next called, before the fake answers.
    pub fn on_next(&self, operation: &'static str, meanwhile: impl FnOnce() + Send + 'static) {
        self.hooks.lock().unwrap().insert(operation, Box::new(meanwhile));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The names of the calls received, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.calls().into_iter().map(|c| c.name).collect()
    }

    /// The arguments of every call of `name`.
    pub fn args_of(&self, name: &str) -> Vec<Vec<String>> {
        self.calls().into_iter().filter(|c| c.name == name).map(|c| c.args).collect()
    }

    pub(super) fn call(&self, name: &'static str, args: &[&str]) -> Result<(), AwsError> {
        self.calls.lock().unwrap().push(Call { name, args: args.iter().map(|a| a.to_string()).collect() });
        let hook = self.hooks.lock().unwrap().remove(name);
        if let Some(meanwhile) = hook {
            meanwhile();
        }
        match self.faults.lock().unwrap().get_mut(name).and_then(VecDeque::pop_front) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// A transient error, as a throttled or failing service answers.
pub fn transient(operation: &'static str) -> AwsError {
    AwsError::new("Fake", operation, AwsErrorKind::Transient, "ThrottlingException: slow down")
}
