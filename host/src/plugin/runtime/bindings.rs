//! Host-side bindings generated from `wit/`, one module per published version of
//! `metaclaude:monitor` (the current one in `wit/`, each older one kept unchanged in
//! `wit/deps/`), and in each one module per world. A version's worlds share the `types`,
//! `host` and `http` interfaces generated once in its `exporter` (the widest sink world)
//! and `notifier` (and, from 0.4.0, `delivery`, also generated in its `notifier`).

/// The worlds of one version: `$path` the WIT folder, `$exporter` .. `$notifier` the
/// worlds as it names them, `$types` and `$host` its interfaces' names, `$pkg` the module
/// bindgen makes of the package; from 0.4.0 also `pusher`: that world's name and the
/// names of the `http` and `delivery` interfaces it shares with the notifier.
macro_rules! version {
    (
        $path:literal,
        [$exporter:literal, $sink:literal, $alert_rule:literal, $notifier:literal],
        $types:literal,
        $host:literal,
        $($pkg:ident)::+
        $(, pusher: $pusher:literal, $http:literal, $delivery:literal)?
    ) => {
        pub mod exporter {
            wasmtime::component::bindgen!({ path: $path, world: $exporter });
        }

        pub mod sink {
            wasmtime::component::bindgen!({
                path: $path,
                world: $sink,
                with: {
                    $types: super::exporter::$($pkg)::+::types,
                    $host: super::exporter::$($pkg)::+::host,
                },
            });
        }

        pub mod alert_rule {
            wasmtime::component::bindgen!({
                path: $path,
                world: $alert_rule,
                with: {
                    $types: super::exporter::$($pkg)::+::types,
                    $host: super::exporter::$($pkg)::+::host,
                },
            });
        }

        pub mod notifier {
            wasmtime::component::bindgen!({
                path: $path,
                world: $notifier,
                with: {
                    $types: super::exporter::$($pkg)::+::types,
                    $host: super::exporter::$($pkg)::+::host,
                },
            });
        }

        pub use exporter::$($pkg)::+::{host, types};
        pub use notifier::$($pkg)::+::http;
        #[allow(unused_imports)]
        use notifier::$($pkg)::+ as notifier_package;

        $(
            pub use notifier_package::delivery;

            pub mod pusher {
                wasmtime::component::bindgen!({
                    path: $path,
                    world: $pusher,
                    with: {
                        $types: super::types,
                        $host: super::host,
                        $http: super::http,
                        $delivery: super::delivery,
                    },
                });
            }
        )?
    };
}

/// `metaclaude:monitor@0.4.0`, the current version: adds the `pusher` world and the
/// `delivery` interface (pushers and notifiers report their deliveries).
pub mod v0_4 {
    version!(
        "../wit",
        [
            "metaclaude:monitor/exporter@0.4.0",
            "metaclaude:monitor/sink@0.4.0",
            "metaclaude:monitor/alert-rule@0.4.0",
            "metaclaude:monitor/notifier@0.4.0"
        ],
        "metaclaude:monitor/types@0.4.0",
        "metaclaude:monitor/host@0.4.0",
        metaclaude::monitor0_4_0,
        pusher: "metaclaude:monitor/pusher@0.4.0",
        "metaclaude:monitor/http@0.4.0",
        "metaclaude:monitor/delivery@0.4.0"
    );
}

/// `metaclaude:monitor@0.3.0`, as published: what the default plugins are built against.
pub mod v0_3 {
    version!(
        "../wit/deps/monitor-0.3.0",
        ["exporter", "sink", "alert-rule", "notifier"],
        "metaclaude:monitor/types",
        "metaclaude:monitor/host",
        metaclaude::monitor
    );
}

/// `metaclaude:monitor@0.2.0`, as published: plugins built against it still load (their
/// exporters render without being told the format).
pub mod v0_2 {
    version!(
        "../wit/deps/monitor-0.2.0",
        ["exporter", "sink", "alert-rule", "notifier"],
        "metaclaude:monitor/types",
        "metaclaude:monitor/host",
        metaclaude::monitor
    );
}

/// `metaclaude:monitor@0.1.0`, as published: plugins built against it still load.
pub mod v0_1 {
    version!(
        "../wit/deps/monitor-0.1.0",
        ["exporter", "sink", "alert-rule", "notifier"],
        "metaclaude:monitor/types",
        "metaclaude:monitor/host",
        metaclaude::monitor
    );
}
