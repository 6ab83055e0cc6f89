//! Finds a ModelOp model's entry points: a `# modelop.<role>` comment line directly above a
//! top-level `def`, the way ModelOp models are written.

use std::collections::{BTreeMap, BTreeSet};

use crate::job::record::ModelRole;

/// The functions a model source declares, by role. The first annotation of a role wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelFunctions {
    by_role: BTreeMap<&'static str, String>,
    /// Every top-level function the source defines, annotated or not: a function ModelOp names on
    /// the asset (`scoreFunction`, ...) must be one of them.
    defined: BTreeSet<String>,
}

impl ModelFunctions {
    pub fn get(&self, role: ModelRole) -> Option<&str> {
        self.by_role.get(role.as_str()).map(String::as_str)
    }

    /// Whether the source has a top-level `def name(`.
    pub fn defines(&self, name: &str) -> bool {
        self.defined.contains(name)
    }
}

/// Reads the annotations of a Python source. An annotation may be separated from its `def` by blank
/// lines, other comments and decorators; an annotation followed by anything else is ignored, as is
/// an indented (non top-level) `def`, which the driver could not call.
pub fn parse_model_functions(source: &str) -> ModelFunctions {
    let mut scanner = AnnotationScanner::default();
    source.lines().for_each(|line| scanner.line(line));
    scanner.finish()
}

/// The same rule, a line at a time, so a source read from S3 can be scanned as it streams in.
#[derive(Debug, Default)]
pub struct AnnotationScanner {
    functions: ModelFunctions,
    pending: Vec<ModelRole>,
}

impl AnnotationScanner {
    pub fn line(&mut self, line: &str) {
        if let Some(name) = top_level_def_name(line) {
            if !self.functions.defined.contains(name) {
                self.functions.defined.insert(name.to_string());
            }
        }
        let trimmed = line.trim();
        if let Some(role) = annotation_role(trimmed) {
            self.pending.push(role);
            return;
        }
        if self.pending.is_empty() || trimmed.is_empty() || trimmed.starts_with('#') || line.starts_with('@') {
            return;
        }
        if let Some(name) = top_level_def_name(line) {
            for role in self.pending.drain(..) {
                self.functions.by_role.entry(role.as_str()).or_insert_with(|| name.to_string());
            }
        } else {
            self.pending.clear();
        }
    }

    pub fn finish(self) -> ModelFunctions {
        self.functions
    }
}

/// `# modelop.score`, `#modelop.score`, `# modelop.score  ` all name the score role.
fn annotation_role(trimmed: &str) -> Option<ModelRole> {
    let rest = trimmed.strip_prefix('#')?.trim_start();
    let role = rest.strip_prefix("modelop.")?.trim_end();
    ModelRole::ALL.into_iter().find(|r| r.as_str() == role)
}

fn top_level_def_name(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("def ")?.trim_start();
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let name = &rest[..end];
    let valid = !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit());
    (valid && rest[end..].trim_start().starts_with('(')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = r#"
import pyspark

# modelop.init
def begin():
    pass

# modelop.score
def action(external_inputs, external_outputs, external_model_assets):
    pass

#modelop.metrics
# computes test results

@some_decorator
def metrics (external_inputs, external_outputs, external_model_assets):
    yield {}

class Trainer:
    # modelop.train
    def train(self):
        pass
"#;

    #[test]
    fn finds_annotated_top_level_functions() {
        let found = parse_model_functions(MODEL);
        let cases = [
            (ModelRole::Init, Some("begin")),
            (ModelRole::Score, Some("action")),
            (ModelRole::Metrics, Some("metrics")),
            // An indented def is a method, not something the driver can call.
            (ModelRole::Train, None),
        ];
        for (role, expected) in cases {
            assert_eq!(found.get(role), expected, "role {role:?}");
        }
    }

    #[test]
    fn table_of_single_annotations() {
        let cases: &[(&str, ModelRole, Option<&str>)] = &[
            ("# modelop.score\ndef score_it(a, b, c):\n", ModelRole::Score, Some("score_it")),
            ("#  modelop.train  \n\n\ndef fit():\n", ModelRole::Train, Some("fit")),
            ("# modelop.score\nx = 1\ndef later():\n", ModelRole::Score, None),
            ("# modelop.scoring\ndef f():\n", ModelRole::Score, None),
            ("# MODELOP.score\ndef f():\n", ModelRole::Score, None),
            ("def f():\n# modelop.score\n", ModelRole::Score, None),
            ("# modelop.score\ndef 1bad():\n", ModelRole::Score, None),
            ("# modelop.score\ndefine = 3\n", ModelRole::Score, None),
            ("# modelop.init\n# modelop.score\ndef both():\n", ModelRole::Init, Some("both")),
            ("# modelop.init\n# modelop.score\ndef both():\n", ModelRole::Score, Some("both")),
            ("# modelop.score\ndef first():\n# modelop.score\ndef second():\n", ModelRole::Score, Some("first")),
        ];
        for (source, role, expected) in cases {
            assert_eq!(parse_model_functions(source).get(*role), *expected, "source {source:?}");
        }
    }

    #[test]
    fn every_top_level_function_is_known_annotated_or_not() {
        let found = parse_model_functions("def init():\n    pass\n\ndef score(a, b, c):\n    def inner():\n        pass\n");
        let cases = [("init", true), ("score", true), ("inner", false), ("metrics", false)];
        for (name, expected) in cases {
            assert_eq!(found.defines(name), expected, "{name}");
        }
        assert_eq!(found.get(ModelRole::Score), None, "no annotation, no role");
    }
}
