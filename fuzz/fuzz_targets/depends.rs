//! The `depends:` graph of a module tree: any graph gives either an order in which
//! every module comes after what it depends on, each once, or a real cycle.
#![no_main]
use cargo_kmod::modtree::ModuleTree;
use std::collections::HashMap;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // One line a module: `name:dep,dep`; names are bytes as depends= gives them.
    let text = String::from_utf8_lossy(data);
    let tree = ModuleTree::empty(std::path::Path::new("/nonexistent"));
    let mut graph: HashMap<String, Vec<String>> = HashMap::new();
    let mut roots = Vec::new();
    for line in text.lines() {
        let (m, deps) = line.split_once(':').unwrap_or((line, ""));
        let deps = cargo_kmod::modtree::split_depends(deps);
        if !graph.contains_key(m) {
            tree.remember_depends(m, deps.clone());
            graph.insert(m.to_string(), deps);
            roots.push(m.to_string());
        }
    }
    let deps_of = |m: &str| graph.get(m).cloned().unwrap_or_default();
    match tree.load_order(&roots) {
        Ok(order) => {
            let at: HashMap<&str, usize> = order.iter().enumerate().map(|(i, m)| (m.as_str(), i)).collect();
            assert_eq!(at.len(), order.len(), "a module listed twice");
            for r in &roots {
                assert!(at.contains_key(r.as_str()), "{r} missing");
            }
            for (i, m) in order.iter().enumerate() {
                for d in deps_of(m) {
                    assert!(at[d.as_str()] < i, "{d} after {m}");
                }
            }
        }
        Err(cycle) => {
            let c = &cycle.0;
            assert!(c.len() >= 2 && c.first() == c.last(), "{c:?}");
            for w in c.windows(2) {
                assert!(deps_of(&w[0]).contains(&w[1]), "{c:?}: no edge {} -> {}", w[0], w[1]);
            }
        }
    }
});
