//! Pagination of collection reads: the next page's request from a Link header, a cursor
//! or next-URL in the body, or page-number and offset parameters. Bounded by the caller.

use crate::request::RequestSpec;
use crate::spec::{Api, ParamLocation};
use serde_json::Value;

/// Most pages read from one collection by one identity.
pub const MAX_PAGES: usize = 20;

const PAGE_PARAMS: [&str; 4] = ["page", "page_number", "pageNumber", "pageNo"];
const OFFSET_PARAMS: [&str; 3] = ["offset", "skip", "start"];
const LIMIT_PARAMS: [&str; 6] = [
    "limit",
    "per_page",
    "perPage",
    "page_size",
    "pageSize",
    "size",
];
const CURSOR_PARAMS: [&str; 7] = [
    "cursor",
    "after",
    "page_token",
    "pageToken",
    "starting_after",
    "continuation",
    "next",
];
const CURSOR_FIELDS: [&str; 6] = [
    "next_cursor",
    "nextCursor",
    "next_page_token",
    "nextPageToken",
    "endCursor",
    "cursor",
];
const NEXT_URL_FIELDS: [&str; 3] = ["next", "next_url", "nextUrl"];
const WRAPPERS: [&str; 6] = [
    "meta",
    "pagination",
    "paging",
    "links",
    "page_info",
    "pageInfo",
];

/// The request for the page after `current`, or `None` when this was the last page.
pub fn next_page(
    api: &Api,
    op: usize,
    current: &RequestSpec,
    body: Option<&Value>,
    link_header: Option<&str>,
    items_on_page: usize,
    base: &url::Url,
) -> Option<RequestSpec> {
    if items_on_page == 0 {
        return None;
    }
    if let Some(next) = link_header.and_then(|l| next_from_link(l)) {
        return request_from_url(current, next, base);
    }
    if let Some(body) = body {
        if let Some(next) = find_field(body, &NEXT_URL_FIELDS).and_then(Value::as_str) {
            if next.starts_with('/') || next.starts_with("http://") || next.starts_with("https://")
            {
                return request_from_url(current, next, base);
            }
        }
        let more =
            find_field(body, &["hasNextPage", "has_more", "hasMore"]).and_then(Value::as_bool);
        if more == Some(false) {
            return None;
        }
        if let Some(cursor) = find_field(body, &CURSOR_FIELDS) {
            let cursor = match cursor {
                Value::String(s) if !s.is_empty() => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            let name = declared(api, op, &CURSOR_PARAMS).unwrap_or("cursor");
            return Some(with_query(current, name, cursor));
        }
    }
    let limit = declared(api, op, &LIMIT_PARAMS)
        .and_then(|name| query_value(current, name))
        .and_then(|v| v.parse::<usize>().ok());
    if limit.is_some_and(|l| items_on_page < l) {
        return None;
    }
    if let Some(name) = declared(api, op, &PAGE_PARAMS) {
        let page = query_value(current, name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1);
        return Some(with_query(current, name, (page + 1).to_string()));
    }
    if let Some(name) = declared(api, op, &OFFSET_PARAMS) {
        let offset = query_value(current, name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        return Some(with_query(
            current,
            name,
            (offset + items_on_page).to_string(),
        ));
    }
    None
}

fn declared<'a>(api: &Api, op: usize, names: &[&'a str]) -> Option<&'a str> {
    let params = &api.operations.get(op)?.parameters;
    names.iter().copied().find(|n| {
        params
            .iter()
            .any(|p| p.location == ParamLocation::Query && p.name == *n)
    })
}

fn query_value<'a>(request: &'a RequestSpec, name: &str) -> Option<&'a str> {
    request
        .query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn with_query(current: &RequestSpec, name: &str, value: String) -> RequestSpec {
    let mut next = current.clone();
    next.query.retain(|(k, _)| k != name);
    next.query.push((name.to_string(), value));
    next
}

/// A field at the top level or one level down in a pagination wrapper.
fn find_field<'a>(body: &'a Value, names: &[&str]) -> Option<&'a Value> {
    let obj = body.as_object()?;
    names
        .iter()
        .find_map(|n| obj.get(*n).filter(|v| !v.is_null()))
        .or_else(|| {
            WRAPPERS.iter().find_map(|w| {
                let inner = obj.get(*w)?.as_object()?;
                names
                    .iter()
                    .find_map(|n| inner.get(*n).filter(|v| !v.is_null()))
            })
        })
}

/// `<https://h/p?page=2>; rel="next", <…>; rel="last"` → the next URL.
fn next_from_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            p.trim().trim_start_matches("rel=").trim_matches('"') == "next" && p.contains("rel")
        });
        is_next.then(|| url.trim().trim_start_matches('<').trim_end_matches('>'))
    })
}

/// A next-page URL as a request; `None` when it leaves the target's origin, which
/// rolegrid never follows.
fn request_from_url(current: &RequestSpec, next: &str, base: &url::Url) -> Option<RequestSpec> {
    let url = base.join(next).ok()?;
    if url.origin() != base.origin() {
        return None;
    }
    let base_path = base.path().trim_end_matches('/');
    let path = url.path().strip_prefix(base_path).unwrap_or(url.path());
    let mut request = current.clone();
    request.path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    request.query = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Some(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Method;

    fn req(query: &[(&str, &str)]) -> RequestSpec {
        RequestSpec {
            method: Method::Get,
            path: "/items".into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            headers: vec![],
            json: None,
        }
    }

    fn api() -> Api {
        crate::spec::test_api("paths:\n  /items:\n    get:\n      parameters:\n        - {name: page, in: query, schema: {type: integer}}\n        - {name: per_page, in: query, schema: {type: integer}}\n      responses: {'200': {description: ok}}\n")
    }

    fn base() -> url::Url {
        url::Url::parse("http://127.0.0.1:9/").expect("url")
    }

    /// The next page after a first page of 5 items whose answer carries `link`.
    fn next_by_link(link: &str) -> Option<RequestSpec> {
        next_page(&api(), 0, &req(&[]), None, Some(link), 5, &base())
    }

    #[test]
    fn link_header_wins_and_stays_on_origin() {
        let next = next_by_link("<http://127.0.0.1:9/items?page=2>; rel=\"next\"");
        assert_eq!(
            next.map(|r| r.query),
            Some(vec![("page".into(), "2".into())])
        );
        let away = next_by_link("<http://evil.test/items?page=2>; rel=\"next\"");
        assert!(away.is_none());
    }

    #[test]
    fn cursors_and_next_urls_in_the_body() {
        let a = api();
        let body = serde_json::json!({"items": [1], "meta": {"next_cursor": "abc"}});
        let next = next_page(&a, 0, &req(&[]), Some(&body), None, 1, &base()).expect("next");
        assert_eq!(next.query, vec![("cursor".into(), "abc".into())]);
        let body = serde_json::json!({"items": [1], "next": "/items?page=3"});
        let next = next_page(&a, 0, &req(&[]), Some(&body), None, 1, &base()).expect("next");
        assert_eq!(next.query, vec![("page".into(), "3".into())]);
        let done = serde_json::json!({"items": [1], "has_more": false, "next_cursor": "x"});
        assert!(next_page(&a, 0, &req(&[]), Some(&done), None, 1, &base()).is_none());
    }

    #[test]
    fn page_numbers_until_a_short_or_empty_page() {
        let a = api();
        let next = next_page(&a, 0, &req(&[("page", "2")]), None, None, 10, &base()).expect("next");
        assert_eq!(next.query, vec![("page".into(), "3".into())]);
        assert!(next_page(&a, 0, &req(&[("per_page", "10")]), None, None, 3, &base()).is_none());
        assert!(next_page(&a, 0, &req(&[]), None, None, 0, &base()).is_none());
    }
}
