//! Across APIs: unchecked APIs, versions outside the checked ranges, a well-formed verdict for
//! every checked API and version, denials, and the versions advertised.

use super::*;

#[test]
fn an_unchecked_api_is_unsupported_unless_passed_through() {
    let session = app();
    let req = request(ApiKey::DescribeAcls, 3, &DescribeAclsRequest::default());
    let (verdict, denials) = run(&session, &req);
    assert!(
        matches!(verdict, Verdict::Unsupported),
        "{}",
        kind(&verdict)
    );
    assert!(denials.is_empty());

    let (verdict, denials) = run_with(&session, &req, true);
    assert_untouched(verdict);
    assert!(denials.is_empty());
}

#[test]
fn a_checked_api_outside_its_checked_versions_is_unsupported() {
    let session = app();
    let named = [
        (ApiKey::Fetch, 13),
        (ApiKey::Fetch, 3),
        (ApiKey::Produce, 10),
        (ApiKey::DeleteTopics, 6),
        (ApiKey::OffsetFetch, 8),
        (ApiKey::Metadata, 13),
        (ApiKey::Metadata, 3),
    ];
    // And the versions just outside each offered range.
    let edges = OFFERED.iter().flat_map(|&(api, lo, hi)| {
        [(api, lo - 1), (api, hi + 1)]
            .into_iter()
            .filter(|&(_, v)| v >= 0)
    });
    for (api, version) in named.into_iter().chain(edges) {
        // The body need not even decode: the version alone decides.
        let mut payload = BytesMut::new();
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = CORRELATION_ID;
        header
            .encode(&mut payload, api.request_header_version(version))
            .unwrap();
        let req = Request::parse(payload.freeze()).unwrap();
        let (verdict, denials) = run(&session, &req);
        assert!(
            matches!(verdict, Verdict::Unsupported),
            "{api:?} v{version}: {}",
            kind(&verdict)
        );
        assert!(denials.is_empty());
    }
}

#[test]
fn a_checked_api_outside_its_checked_versions_is_never_passed_through() {
    let session = app();
    for version in 10..=11 {
        let req = request(ApiKey::Produce, version, &produce(-1, &[("secret", &[0])]));
        let (verdict, _) = run_with(&session, &req, true);
        assert!(
            matches!(verdict, Verdict::Unsupported),
            "Produce v{version} to a refused topic: {}",
            kind(&verdict)
        );
    }
}

#[test]
fn every_checked_api_and_version_gets_a_well_formed_verdict() {
    let session = app();
    for &(api, lo, hi) in OFFERED {
        for version in lo..=hi {
            let req = sample(api, version);
            let (verdict, _) = run(&session, &req);
            match verdict {
                Verdict::Forward { frame, .. } => {
                    if let Some(frame) = frame {
                        let sent = Request::parse(frame.slice(4..)).unwrap();
                        assert_eq!(sent.correlation_id(), CORRELATION_ID);
                        assert_eq!(
                            sent.frame.len() + 4,
                            frame.len(),
                            "{api:?} v{version}: length prefix"
                        );
                    }
                }
                Verdict::Answer(Some(frame)) => {
                    let (correlation_id, body) =
                        split_response(api, version, frame.slice(4..)).unwrap();
                    assert_eq!(correlation_id, CORRELATION_ID, "{api:?} v{version}");
                    assert!(!body.is_empty());
                }
                Verdict::Answer(None) => panic!("{api:?} v{version}: only acks=0 gets no answer"),
                Verdict::Unsupported => panic!("{api:?} v{version}: unsupported"),
            }
        }
    }
}

#[test]
fn denials_list_every_refused_operation_and_resource() {
    let session = app();
    let req = request(
        ApiKey::Produce,
        9,
        &produce(
            -1,
            &[
                ("secret", &[0]),
                ("orders-eu", &[0]),
                ("events-a", &[0]),
                ("secret-2", &[0]),
            ],
        ),
    );
    assert_eq!(
        run(&session, &req).1,
        [
            denial(Operation::Write, "Topic:secret"),
            denial(Operation::Write, "Topic:events-a"),
            denial(Operation::Write, "Topic:secret-2"),
        ]
    );
    let req = request(
        ApiKey::DeleteGroups,
        2,
        &delete_groups(&["other-1", "other-2"]),
    );
    assert_eq!(
        run(&session, &req).1,
        [
            denial(Operation::Delete, "Group:other-1"),
            denial(Operation::Delete, "Group:other-2"),
        ]
    );
    // Allowed requests refuse nothing.
    let req = request(ApiKey::Heartbeat, 4, &heartbeat("app-1"));
    assert!(run(&session, &req).1.is_empty());
}

fn ranges(v: &[ApiVersion]) -> Vec<(ApiKey, i16, i16)> {
    v.iter()
        .map(|a| {
            (
                ApiKey::try_from(a.api_key).unwrap(),
                a.min_version,
                a.max_version,
            )
        })
        .collect()
}

fn range_of(v: &[(ApiKey, i16, i16)], api: ApiKey) -> Option<(i16, i16)> {
    v.iter()
        .find(|(k, ..)| *k == api)
        .map(|&(_, lo, hi)| (lo, hi))
}

#[test]
fn advertised_versions_without_upstream() {
    let v = ranges(&advertised_versions(None, &[]));
    assert_eq!(range_of(&v, ApiKey::SaslHandshake), Some((1, 1)));
    assert_eq!(range_of(&v, ApiKey::SaslAuthenticate), Some((0, 2)));
    assert_eq!(range_of(&v, ApiKey::ApiVersions), Some((0, 3)));
    for &(api, lo, hi) in OFFERED {
        assert_eq!(range_of(&v, api), Some((lo, hi)), "{api:?}");
    }
    assert_eq!(v.len(), 3 + OFFERED.len(), "nothing else: {v:?}");
    assert_eq!(range_of(&v, ApiKey::Fetch), Some((4, 12)));
    assert_eq!(range_of(&v, ApiKey::DescribeAcls), None);
}

#[test]
fn the_checked_versions_are_the_readmes() {
    let mut code: Vec<_> = checked().collect();
    let mut readme = OFFERED.to_vec();
    code.sort_by_key(|&(api, ..)| api as i16);
    readme.sort_by_key(|&(api, ..)| api as i16);
    assert_eq!(code, readme);
    for &(api, lo, hi) in OFFERED {
        assert_eq!(checked_range(api), Some((lo, hi)), "{api:?}");
    }
    let unchecked = (0..1000)
        .filter_map(|k| ApiKey::try_from(k).ok())
        .filter(|api| !OFFERED.iter().any(|(k, ..)| k == api));
    for api in unchecked {
        assert_eq!(checked_range(api), None, "{api:?}");
    }
    // The README's enforcement table, where these literals come from.
    let text = include_str!("../../../../README.md");
    for &(api, lo, hi) in OFFERED {
        let entry = format!("{api:?} ({lo}-{hi})");
        assert!(text.contains(&entry), "README.md lacks `{entry}`");
    }
}

#[test]
fn advertised_versions_intersect_with_the_upstream() {
    let mut upstream = ApiVersionsResponse::default();
    upstream.api_keys = OFFERED
        .iter()
        .filter(|(api, ..)| *api != ApiKey::DeleteGroups)
        .map(|&(api, ..)| {
            let (lo, hi) = match api {
                ApiKey::Fetch => (0, 11),
                ApiKey::Produce => (5, 13),
                ApiKey::Metadata => (0, 6),
                ApiKey::ListGroups => (7, 9),
                _ => (0, 99),
            };
            ApiVersion::default()
                .with_api_key(api as i16)
                .with_min_version(lo)
                .with_max_version(hi)
        })
        .collect();
    let v = ranges(&advertised_versions(Some(&upstream), &[]));
    assert_eq!(range_of(&v, ApiKey::Fetch), Some((4, 11)));
    assert_eq!(range_of(&v, ApiKey::Produce), Some((5, 9)));
    assert_eq!(range_of(&v, ApiKey::Metadata), Some((4, 6)));
    assert_eq!(
        range_of(&v, ApiKey::DeleteGroups),
        None,
        "an API the upstream lacks is not offered"
    );
    assert_eq!(
        range_of(&v, ApiKey::ListGroups),
        None,
        "an empty intersection is not offered"
    );
    assert_eq!(range_of(&v, ApiKey::JoinGroup), Some((0, 9)));
    // Answered by the gateway itself, whatever the upstream says.
    assert_eq!(range_of(&v, ApiKey::SaslHandshake), Some((1, 1)));
    assert_eq!(range_of(&v, ApiKey::SaslAuthenticate), Some((0, 2)));
    assert_eq!(range_of(&v, ApiKey::ApiVersions), Some((0, 3)));
}

#[test]
fn advertised_versions_add_pass_through_apis() {
    let v = ranges(&advertised_versions(
        None,
        &[ApiKey::DescribeProducers, ApiKey::Fetch],
    ));
    let crate_range = ApiKey::DescribeProducers.valid_versions();
    assert_eq!(
        range_of(&v, ApiKey::DescribeProducers),
        Some((crate_range.min, crate_range.max))
    );
    assert_eq!(
        range_of(&v, ApiKey::Fetch),
        Some((4, 12)),
        "a checked API keeps its checked range even when listed as a pass-through"
    );
    assert_eq!(v.iter().filter(|(k, ..)| *k == ApiKey::Fetch).count(), 1);

    let mut upstream = ApiVersionsResponse::default();
    upstream.api_keys = vec![
        ApiVersion::default()
            .with_api_key(ApiKey::DescribeProducers as i16)
            .with_min_version(0)
            .with_max_version(0),
    ];
    let v = ranges(&advertised_versions(
        Some(&upstream),
        &[ApiKey::DescribeProducers, ApiKey::DescribeAcls],
    ));
    assert_eq!(range_of(&v, ApiKey::DescribeProducers), Some((0, 0)));
    assert_eq!(range_of(&v, ApiKey::DescribeAcls), None, "not upstream");
}
