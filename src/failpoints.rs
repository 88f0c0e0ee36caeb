//! Test hooks that stop or break a reconcile at a chosen point, for the stack tests of crash recovery.
//! They exist only with the cargo feature `failpoints` (the tests enable it through the crate's
//! dev-dependency on itself); without it every hook is an empty inline function, and neither the
//! environment variable nor a hook's name is in the binary.

/// The failpoint armed for this process (feature `failpoints`: from the environment variable named in
/// the module's code; without the feature: none, ever).
#[derive(Clone, Debug, Default)]
pub struct Failpoints {
    #[cfg(feature = "failpoints")]
    armed: Option<String>,
}

#[cfg(feature = "failpoints")]
impl Failpoints {
    /// Reads `APIGW_FAILPOINT`; an armed failpoint is logged at startup.
    pub fn from_env() -> Self {
        let armed = std::env::var("APIGW_FAILPOINT")
            .ok()
            .filter(|f| !f.is_empty());
        if let Some(f) = &armed {
            tracing::warn!(failpoint = %f, "test failpoint armed");
        }
        Failpoints { armed }
    }

    /// A set of failpoints armed with `name` (for in-process tests).
    pub fn armed(name: &str) -> Self {
        Failpoints {
            armed: Some(name.to_string()),
        }
    }

    fn is(&self, name: &str) -> bool {
        self.armed.as_deref() == Some(name)
    }

    /// `panic-once`: the first reconcile of each resource whose name contains "panic" panics here (the
    /// caller holds the API's lock, in the middle of the work), for the test that a panic is caught.
    pub fn panic_once(&self, name: &str) {
        use std::collections::BTreeSet;
        static FIRED: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
        if self.is("panic-once")
            && name.contains("panic")
            && FIRED.lock().unwrap().insert(name.to_string())
        {
            panic!("failpoint panic-once reached for {name}");
        }
    }

    /// `after-create`: the reconcile stops for good between CreateIntegration and the status write
    /// that would record `integration_id`, as if the process had died there.
    pub async fn after_create(&self, integration_id: &str) {
        if self.is("after-create") {
            tracing::error!(%integration_id, "failpoint after-create reached: stopping before the status write");
            std::future::pending::<()>().await;
        }
    }

    /// `after-response-create`: the reconcile stops for good after its first CreateIntegrationResponse,
    /// before anything records it, as if the process had died there (rule 12).
    pub async fn after_response_create(&self, response_id: &str) {
        if self.is("after-response-create") {
            tracing::error!(%response_id, "failpoint after-response-create reached: stopping");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(feature = "failpoints"))]
impl Failpoints {
    /// Without the feature nothing can be armed.
    pub fn from_env() -> Self {
        Failpoints {}
    }

    #[inline(always)]
    pub fn panic_once(&self, _name: &str) {}

    #[inline(always)]
    pub async fn after_create(&self, _integration_id: &str) {}

    #[inline(always)]
    pub async fn after_response_create(&self, _response_id: &str) {}
}
