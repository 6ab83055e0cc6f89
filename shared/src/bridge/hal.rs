//! model-manage's HAL answers (Spring Data REST): a page of jobs (`_embedded.<rel>` lists and
//! `page {size, totalElements, totalPages, number}`), the finders listed at `GET …/jobs/search`
//! (`_links.<name>.href`, templated `…/<name>{?param,…}`), and which page to read next while the
//! poll's own claims take jobs out of the result.

use serde_json::Value;

/// One page of a collection or finder.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    /// Every resource of every `_embedded` list (Spring HATEOAS may group subclasses under their
    /// own rels, `modelBatchJobs`, …), in order.
    pub jobs: Vec<Value>,
    /// `page.totalPages`; 1 when the answer has no `page` (an unpaged answer).
    pub total_pages: u64,
    /// `page.number`, 0-based.
    pub number: u64,
}

/// Reads a page; `Err` names what is missing.
pub fn parse_page(body: &Value) -> Result<JobPage, String> {
    let jobs = match body.get("_embedded") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(rels)) => rels.values().filter_map(Value::as_array).flatten().cloned().collect(),
        Some(_) => return Err("_embedded is not an object".into()),
    };
    if !body.is_object() {
        return Err("the answer is not a JSON object".into());
    }
    let page = body.get("page");
    let number = |field: &str| page.and_then(|p| p.get(field)).and_then(Value::as_u64);
    Ok(JobPage { jobs, total_pages: if page.is_some() { number("totalPages").unwrap_or(0) } else { 1 }, number: number("number").unwrap_or(0) })
}

/// A finder as `/search` lists it: its name and query parameters (`page`, `size`, `sort` left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finder {
    pub name: String,
    pub params: Vec<String>,
}

/// The finders of a `/search` answer. A link's name is its rel; its parameters come from the URI
/// template's `{?a,b}` (an untemplated link has none known).
pub fn parse_finders(body: &Value) -> Vec<Finder> {
    let Some(links) = body.get("_links").and_then(Value::as_object) else { return Vec::new() };
    links
        .iter()
        .filter(|(rel, _)| rel.as_str() != "self")
        .map(|(rel, link)| {
            let href = link.get("href").and_then(Value::as_str).unwrap_or_default();
            let params = href
                .split_once("{?")
                .and_then(|(_, rest)| rest.split_once('}'))
                .map(|(list, _)| list.split(',').map(str::trim).filter(|p| !p.is_empty() && !matches!(*p, "page" | "size" | "sort")).map(str::to_string).collect())
                .unwrap_or_default();
            Finder { name: rel.clone(), params }
        })
        .collect()
}

/// How the bridge asks model-manage for jobs of one status: the finder and which of its
/// parameters takes the status and the engine type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinderQuery {
    pub name: String,
    pub status_param: String,
    /// `None`: the finder does not filter by engine type; the bridge filters what it returns.
    pub engine_param: Option<String>,
}

fn status_param(finder: &Finder) -> Option<&String> {
    finder.params.iter().find(|p| p.to_ascii_lowercase().contains("status"))
}

fn engine_param(finder: &Finder) -> Option<&String> {
    finder.params.iter().find(|p| p.to_ascii_lowercase().contains("engine"))
}

/// The finder to use: the configured one (`MODELOP_JOB_FINDER`, which must be listed and take a
/// status), else the listed finder that takes only a status and an engine type, else one that
/// takes only a status (the bridge then filters by engine). `Err` says what was listed.
pub fn choose_finder(finders: &[Finder], configured: Option<&str>) -> Result<FinderQuery, String> {
    let query = |f: &Finder| status_param(f).map(|s| FinderQuery { name: f.name.clone(), status_param: s.clone(), engine_param: engine_param(f).cloned() });
    let listed = || finders.iter().map(|f| format!("{}({})", f.name, f.params.join(","))).collect::<Vec<_>>().join(", ");
    if let Some(name) = configured {
        let finder = finders.iter().find(|f| f.name == name).ok_or_else(|| format!("the finder {name} is not listed at jobs/search (listed: {})", listed()))?;
        return query(finder).ok_or_else(|| format!("the finder {name} takes no status parameter ({})", finder.params.join(",")));
    }
    let only = |wanted: usize| finders.iter().filter(move |f| f.params.len() == wanted).filter_map(move |f| query(f).filter(|q| (wanted == 2) == q.engine_param.is_some()));
    only(2).next().or_else(|| only(1).next()).ok_or_else(|| format!("no finder of jobs by status is listed at jobs/search (listed: {}); set MODELOP_JOB_FINDER", listed()))
}

/// The page to read next, when `left_in_place` jobs of the (sorted) result were seen and left
/// there (each claim takes its job out of the result, so what follows moves up): the page that
/// holds the first job not seen yet.
pub fn page_to_read(left_in_place: usize, page_size: usize) -> u64 {
    (left_in_place / page_size.max(1)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_read_every_embedded_list_and_the_page_numbers() {
        let cases = [
            (json!({"_embedded": {"jobs": [{"id": "a"}, {"id": "b"}]}, "page": {"size": 2, "totalElements": 3, "totalPages": 2, "number": 0}}), Ok((vec!["a", "b"], 2, 0))),
            (json!({"_embedded": {"modelBatchJobs": [{"id": "a"}], "modelBatchTestJobs": [{"id": "b"}]}, "page": {"totalPages": 1, "number": 0}}), Ok((vec!["a", "b"], 1, 0))),
            (json!({"_embedded": {"jobs": []}, "page": {"size": 20, "totalElements": 0, "totalPages": 0, "number": 0}}), Ok((vec![], 0, 0))),
            (json!({"_links": {}}), Ok((vec![], 1, 0))),
            (json!({"_embedded": [1]}), Err("_embedded is not an object".to_string())),
        ];
        for (body, expected) in cases {
            let got = parse_page(&body).map(|p| (p.jobs.iter().map(|j| j["id"].as_str().unwrap().to_string()).collect::<Vec<_>>(), p.total_pages, p.number));
            let expected = expected.map(|(ids, total, number)| (ids.into_iter().map(str::to_string).collect::<Vec<_>>(), total, number));
            assert_eq!(got, expected, "{body}");
        }
    }

    fn listing() -> Value {
        json!({"_links": {
            "findAllByJobStatus": {"href": "http://mm/model-manage/api/jobs/search/findAllByJobStatus{?jobStatus,page,size,sort}", "templated": true},
            "findAllByJobStatusAndTargetEngineEngineType": {"href": "http://mm/model-manage/api/jobs/search/findAllByJobStatusAndTargetEngineEngineType{?jobStatus,engineType,page,size,sort}", "templated": true},
            "findByModelId": {"href": "http://mm/model-manage/api/jobs/search/findByModelId{?modelId}", "templated": true},
            "self": {"href": "http://mm/model-manage/api/jobs/search"}
        }})
    }

    #[test]
    fn finders_are_read_from_the_search_listing_and_chosen_by_their_parameters() {
        let finders = parse_finders(&listing());
        assert_eq!(finders.len(), 3);
        let both = FinderQuery { name: "findAllByJobStatusAndTargetEngineEngineType".into(), status_param: "jobStatus".into(), engine_param: Some("engineType".into()) };
        let status_only = FinderQuery { name: "findAllByJobStatus".into(), status_param: "jobStatus".into(), engine_param: None };
        assert_eq!(choose_finder(&finders, None), Ok(both.clone()));
        assert_eq!(choose_finder(&finders, Some("findAllByJobStatus")), Ok(status_only.clone()));
        let without_engine: Vec<Finder> = finders.iter().filter(|f| f.params.len() != 2).cloned().collect();
        assert_eq!(choose_finder(&without_engine, None), Ok(status_only));
        let errors = [
            (choose_finder(&finders, Some("findByModelId")), "the finder findByModelId takes no status parameter"),
            (choose_finder(&finders, Some("nope")), "the finder nope is not listed at jobs/search"),
            (choose_finder(&finders.iter().filter(|f| f.name == "findByModelId").cloned().collect::<Vec<_>>(), None), "no finder of jobs by status is listed at jobs/search (listed: findByModelId(modelId)); set MODELOP_JOB_FINDER"),
        ];
        for (result, needle) in errors {
            assert!(result.as_ref().is_err_and(|e| e.contains(needle)), "{result:?}");
        }
    }

    #[test]
    fn the_next_page_holds_the_first_job_not_seen() {
        for (left_in_place, size, page) in [(0, 20, 0), (19, 20, 0), (20, 20, 1), (45, 20, 2), (3, 0, 3)] {
            assert_eq!(page_to_read(left_in_place, size), page, "{left_in_place} left, size {size}");
        }
    }
}
