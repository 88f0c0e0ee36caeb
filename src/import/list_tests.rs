use super::*;
use std::collections::VecDeque;

fn page(items: &[u32], next: Option<&str>) -> Result<Page<u32>, AwsError> {
    Ok(Page {
        items: items.to_vec(),
        next: next.map(str::to_string),
    })
}

fn throttled() -> AwsError {
    AwsError::Throttled("TooManyRequestsException: Too Many Requests".into())
}

fn of_api() -> Call {
    Call::first(
        "GetIntegrations",
        Listed::Api {
            api_id: "a1".into(),
        },
    )
}

/// What one listing did: its result, the tokens asked for (in order), the pauses slept, and what
/// progress was told.
struct Run {
    result: Result<Vec<u32>, ListError>,
    asked: Vec<Option<String>>,
    slept: Vec<Duration>,
    told: Vec<String>,
}

/// Runs `every_page` over `answers`, handed out in order whatever the token.
fn run(call: Call, answers: Vec<Result<Page<u32>, AwsError>>) -> Run {
    let mut answers = VecDeque::from(answers);
    let (mut asked, mut slept, mut told) = (Vec::new(), Vec::new(), Vec::new());
    let result = futures::executor::block_on(every_page(
        call,
        &Retry::IMPORT,
        |token| {
            asked.push(token);
            let answer = answers.pop_front().expect("no call past the script");
            async move { answer }
        },
        |pause| {
            slept.push(pause);
            std::future::ready(())
        },
        &mut |p: Progress<'_>| told.push(p.to_string()),
    ));
    assert!(answers.is_empty(), "answers left over: {}", answers.len());
    Run {
        result,
        asked,
        slept,
        told,
    }
}

#[test]
fn a_failed_page_is_asked_for_again_with_its_token_and_the_pages_before_it_are_kept() {
    let r = run(
        of_api(),
        vec![
            page(&[1, 2], Some("2")),
            Err(throttled()),
            Err(AwsError::Unavailable("InternalServerError: boom".into())),
            page(&[3, 4], Some("4")),
            Err(AwsError::Unavailable("timed out: operation timeout".into())),
            page(&[5], None),
        ],
    );
    // Every item once, in order: nothing read twice, nothing missed.
    assert_eq!(r.result.unwrap(), vec![1, 2, 3, 4, 5]);
    let tokens: Vec<Option<&str>> = r.asked.iter().map(Option::as_deref).collect();
    assert_eq!(
        tokens,
        [None, Some("2"), Some("2"), Some("2"), Some("4"), Some("4")]
    );
    // The pauses double per call and start over for the next page.
    assert_eq!(r.slept.len(), 3);
    let bounds = |failed: u32| {
        let whole = Retry::IMPORT
            .pause_after(failed, &throttled(), 1.0)
            .unwrap();
        whole / 2..=whole
    };
    assert!(bounds(1).contains(&r.slept[0]), "{:?}", r.slept);
    assert!(bounds(2).contains(&r.slept[1]), "{:?}", r.slept);
    assert!(bounds(1).contains(&r.slept[2]), "{:?}", r.slept);
    assert_eq!(r.told.len(), 3, "{:?}", r.told);
    assert!(
        r.told[0].starts_with(
            "GetIntegrations of API a1 (page 2) failed (throttled by API Gateway: \
             TooManyRequestsException: Too Many Requests); attempt 2 in "
        ),
        "{:?}",
        r.told
    );
    assert!(r.told[2].contains("(page 3)"), "{:?}", r.told);
}

#[test]
fn a_call_throttled_through_every_attempt_ends_the_listing_naming_the_call() {
    let mut answers = vec![page(&[1], Some("1"))];
    answers.extend((0..Retry::IMPORT.attempts).map(|_| Err(throttled())));
    let r = run(of_api(), answers);
    let err = r.result.unwrap_err();
    assert!(
        matches!(&err, ListError::GaveUp { call, attempts: 8, .. } if call.page == 2),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "GetIntegrations of API a1 (page 2) failed 8 times in a row, the last time: throttled by \
         API Gateway: TooManyRequestsException: Too Many Requests; gave up"
    );
    assert_eq!(r.asked.len(), 1 + 8);
    assert_eq!(r.slept.len(), 7);
    // Bounded: at most the sum of the whole pauses.
    let most: Duration = (1..8)
        .map(|f| Retry::IMPORT.pause_after(f, &throttled(), 1.0).unwrap())
        .sum();
    assert!(r.slept.iter().sum::<Duration>() <= most);
}

#[test]
fn a_lasting_failure_ends_the_listing_at_once() {
    let denied = AwsError::AccessDenied("AccessDeniedException: not allowed".into());
    let r = run(of_api(), vec![page(&[1], Some("1")), Err(denied.clone())]);
    let err = r.result.unwrap_err();
    assert!(matches!(&err, ListError::Aws { source, .. } if *source == denied));
    assert_eq!(
        err.to_string(),
        "GetIntegrations of API a1 (page 2) failed: access denied: AccessDeniedException: not allowed"
    );
    assert_eq!(r.asked.len(), 2);
    assert!(r.slept.is_empty() && r.told.is_empty());
}

#[test]
fn an_api_deleted_after_it_was_listed_ends_the_import_saying_so() {
    let gone = AwsError::NotFound("NotFoundException: Invalid API identifier specified".into());
    let r = run(of_api(), vec![Err(gone.clone())]);
    let err = r.result.unwrap_err();
    assert!(matches!(&err, ListError::Gone { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(
            "GetIntegrations of API a1 (page 1) failed: not found: NotFoundException: Invalid API \
             identifier specified. It was listed a moment before, so it was deleted while the import \
             ran"
        ),
        "{err}"
    );
    assert_eq!(r.asked.len(), 1, "not found is not asked again");
    // An integration's responses likewise; a region-wide listing has nothing that was listed before.
    let responses = Call::first(
        "GetIntegrationResponses",
        Listed::Integration {
            api_id: "a1".into(),
            integration_id: "i9".into(),
        },
    );
    assert_eq!(
        responses.to_string(),
        "GetIntegrationResponses of integration i9 of API a1 (page 1)"
    );
    assert!(matches!(
        stop(responses, 1, gone.clone()),
        ListError::Gone { .. }
    ));
    assert!(matches!(
        stop(Call::first("GetApis", Listed::Region), 1, gone),
        ListError::Aws { .. }
    ));
}
