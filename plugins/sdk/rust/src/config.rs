/// The stage's `config` table from the pipeline file, as string pairs.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    /// Wraps the pairs the host passed to `init`.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Config { pairs }
    }

    /// The value of `key`, if the pipeline set it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an error message naming the missing key.
    pub fn require(&self, key: &str) -> Result<&str, String> {
        self.get(key)
            .ok_or_else(|| format!("config key {key:?} is required"))
    }

    /// All pairs, in the order the host passed them.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}
