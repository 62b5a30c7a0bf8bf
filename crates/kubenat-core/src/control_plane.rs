//! The control plane: the cluster's objects held once, compiled once per change into an
//! immutable snapshot ([`ClusterTables`]) that every engine of every node reads.
//!
//! Katran's control plane publishes into maps its per-CPU data plane reads; Cilium compiles
//! one service map that every CPU reads. Here a change ([`Update`]: one Service or one
//! EndpointSlice) recompiles only that Service's ports, and the next snapshot is published
//! atomically ([`Publication`]); engines take it between batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::build;
use crate::categorize::Candidates;
use crate::compile::{CompileSettings, compile_service};
use crate::known::{Known, KnownServices, Objects};
use crate::model::{ClusterState, EndpointSlice, Protocol, ProxyConfig, ServiceName};
use crate::node_names::NodeNames;
use crate::tables::{
    Changed, ClusterTables, CompiledServicePort, NodeSettings, ServicePortId, Tables,
};

/// One change to the cluster state, as a watch on the API server would deliver it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// Replace everything (a resync).
    Replace(Box<ClusterState>),
    /// A Service was added or changed (matched by [`Service::name`](crate::Service::name));
    /// it replaces the previous definition whole.
    UpsertService(Box<crate::Service>),
    /// A Service was deleted. Its EndpointSlices are kept until they are removed too.
    RemoveService(ServiceName),
    /// An EndpointSlice was added or changed (matched by its Service and name).
    UpsertEndpointSlice(Box<EndpointSlice>),
    /// An EndpointSlice was deleted.
    RemoveEndpointSlice {
        /// The Service the slice belonged to ([`EndpointSlice::service`]).
        service: ServiceName,
        /// The slice's [`EndpointSlice::name`].
        name: String,
    },
}

/// The cluster's objects, indexed by Service, and the snapshot compiled from them.
///
/// Make one per cluster; hand its [`Publication`] to every engine that should follow it
/// ([`Engine::follow`](crate::Engine::follow)): the worker threads of one node, or every
/// node of a simulated cluster. [`Engine::new`](crate::Engine::new) makes a private one.
///
/// ```
/// use kubenat_core::{ControlPlane, ServiceName, Update, reference};
///
/// let mut plane = ControlPlane::new(&reference::cluster("nodo1"));
/// let dns = ServiceName::new("kube-system", "kube-dns");
/// assert_eq!(plane.apply(Update::RemoveService(dns.clone())), Some(dns));
/// // kube-dns had two ports (UDP and TCP 53); three single-port Services remain.
/// assert_eq!(plane.snapshot().ports().count(), 3);
/// assert_eq!(plane.snapshot().generation(), 1);
/// ```
pub struct ControlPlane {
    proxy: ProxyConfig,
    /// Everything known under each Service name.
    services: KnownServices,
    nodes: NodeNames,
    /// The tables changes are written to; `current` is a snapshot of them.
    writer: ClusterTables,
    /// The latest snapshot.
    current: Arc<ClusterTables>,
    /// Whether `current` holds a compiled state (the first compile is generation 0).
    compiled: bool,
    /// Made when first asked for.
    publication: Option<Publication>,
    scratch: Scratch,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("generation", &self.current.generation())
            .field("ports", &self.current.port_slots())
            .finish()
    }
}

/// Room an update compiles in, kept between updates so that each does not allocate its own.
#[derive(Default)]
struct Scratch {
    candidates: Candidates,
    ports: Vec<CompiledServicePort>,
}

impl Known {
    /// Compiles `objects` in place of the ports compiled before; returns the change.
    fn recompile(
        &mut self,
        objects: Objects,
        tables: &mut ClusterTables,
        settings: CompileSettings,
        nodes: &mut NodeNames,
        scratch: &mut Scratch,
    ) -> Changed {
        let old = std::mem::take(&mut self.ports);
        let Objects { service, slices } = objects;
        let exists = service.is_some();
        let ports = &mut scratch.ports;
        if let Some(mut service) = service {
            let intern = &mut |name: &str| nodes.intern(name);
            let candidates = &mut scratch.candidates;
            compile_service(&mut service, &slices, settings, intern, candidates, ports);
        }
        // The old ports read after compiling, by when they have arrived (`edit`).
        let udp = ports
            .iter()
            .chain(old.iter().map(|&id| tables.port(id)))
            .any(|p| p.protocol == Protocol::Udp);
        let mut ids = old.to_vec();
        // New endpoints behind the same frontends (the common change) keep their ids.
        if tables.replace_ports(&old, ports) {
            self.ports = old;
        } else {
            tables.remove_ports(&old);
            if exists {
                self.ports = tables.insert_ports(ports.drain(..));
                ids.extend_from_slice(&self.ports);
            }
        }
        debug_assert!(ports.is_empty(), "the scratch ports are all taken");
        ids.sort_unstable();
        ids.dedup();
        Changed::Ports {
            ids: ids.into_boxed_slice(),
            udp,
        }
    }
}

impl ControlPlane {
    /// Compiles a whole state (a copy of it: [`ControlPlane::from_state`] takes it instead).
    pub fn new(state: &ClusterState) -> ControlPlane {
        ControlPlane::from_state(state.clone())
    }

    /// Compiles a whole state, keeping its objects for later updates.
    pub fn from_state(state: ClusterState) -> ControlPlane {
        let mut plane = ControlPlane {
            proxy: ProxyConfig::default(),
            services: KnownServices::with_capacity(0),
            nodes: NodeNames::default(),
            writer: ClusterTables::with_capacity(0),
            current: Arc::new(ClusterTables::with_capacity(0)),
            compiled: false,
            publication: None,
            scratch: Scratch::default(),
        };
        plane.replace(state);
        plane
    }

    /// Recompiles everything from `state`.
    fn replace(&mut self, state: ClusterState) {
        let ClusterState {
            services,
            endpoint_slices: slices,
            proxy,
            ..
        } = state;
        let settings = compile_settings(&proxy);
        let (mut tables, known) = build::build(services, slices, settings, &mut self.nodes);
        if self.compiled {
            // A resync: the generation count goes on, so followers see a change.
            tables.continue_from(&self.writer);
            tables.next_generation(Changed::All);
        }
        self.compiled = true;
        self.proxy = proxy;
        self.services = known;
        self.current = Arc::new(tables.snapshot());
        self.writer = tables;
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> &Arc<ClusterTables> {
        &self.current
    }

    /// The node of the proxy settings' view of the current snapshot (those of the state
    /// compiled, or of the last [`Update::Replace`]).
    pub fn tables(&self) -> Tables {
        Tables::new(
            self.current.clone(),
            Arc::new(NodeSettings::from_proxy(&self.proxy)),
        )
    }

    /// The service ports compiled from the Service `name` (none when it is unknown or
    /// headless).
    pub fn ports_of(&self, name: &ServiceName) -> &[ServicePortId] {
        self.services
            .find(name)
            .map_or(&[], |slot| &self.services.get(slot).ports)
    }

    /// The proxy settings of the current state (those of the last [`Update::Replace`]).
    pub fn proxy(&self) -> &ProxyConfig {
        &self.proxy
    }

    /// Where engines find the latest snapshot; every clone reads the same one.
    pub fn publication(&mut self) -> Publication {
        self.publication
            .get_or_insert_with(|| Publication::new(self.current.clone()))
            .clone()
    }

    /// Applies one change and publishes the next snapshot; returns the Service whose
    /// rules changed (all of them for [`Update::Replace`], as `None`).
    pub fn apply(&mut self, update: Update) -> Option<ServiceName> {
        let changed = self.edit(update);
        if let Some(publication) = &self.publication {
            publication.publish(self.current.clone());
        }
        changed
    }

    fn edit(&mut self, update: Update) -> Option<ServiceName> {
        let name = match &update {
            Update::Replace(_) => None,
            Update::UpsertService(service) => Some(service.name.clone()),
            Update::RemoveService(name) => Some(name.clone()),
            Update::UpsertEndpointSlice(slice) => Some(slice.service.clone()),
            Update::RemoveEndpointSlice { service, .. } => Some(service.clone()),
        };
        let Some(name) = name else {
            if let Update::Replace(state) = update {
                self.replace(*state);
            }
            return None;
        };
        let slot = self.services.find(&name);
        let nothing = Known::default();
        let known = slot.map_or(&nothing, |slot| self.services.get(slot));
        // At a million Services most of an update's time is waiting for memory. What it
        // will read and copy is asked for first, so the misses overlap one another and
        // the decoding, then the old ports once their places are in.
        known.prefetch();
        self.writer.prefetch_places(&known.ports);
        let objects = match update {
            Update::Replace(_) => unreachable!("handled above"),
            Update::UpsertService(service) => Objects {
                service: Some(*service),
                ..known.objects()
            },
            Update::RemoveService(_) => Objects {
                service: None,
                ..known.objects()
            },
            // A slice change steps over the slice it replaces instead of decoding it.
            Update::UpsertEndpointSlice(slice) => known.objects_with_slice(*slice),
            Update::RemoveEndpointSlice { name: slice, .. } => known.objects_without_slice(&slice),
        };
        self.writer.prefetch_compiled(&known.ports);
        let slot = match slot {
            Some(slot) => slot,
            // Removing what is not there changes nothing.
            None if objects.name().is_none() => return Some(name),
            None => self.services.insert_new(&objects),
        };
        let settings = compile_settings(&self.proxy);
        let tables = &mut self.writer;
        // Kept first: compiling takes the objects (their names move into the ports).
        self.services.store(slot, &objects);
        let change = self.services.get_mut(slot).recompile(
            objects,
            tables,
            settings,
            &mut self.nodes,
            &mut self.scratch,
        );
        tables.next_generation(change);
        self.current = Arc::new(tables.snapshot());
        self.services.remove_if_empty(slot, &name);
        Some(name)
    }
}

fn compile_settings(proxy: &ProxyConfig) -> CompileSettings {
    CompileSettings {
        selection: proxy.selection,
        seed: proxy.seed,
    }
}

/// The latest snapshot of a [`ControlPlane`], published atomically: any number of threads
/// read it without locks, and each reader keeps the snapshot it loaded for as long as it
/// wants (an engine, for one batch at least).
///
/// `arc-swap` publishes: a reader's load is a few atomic instructions and never waits for
/// the writer, and a snapshot is freed when its last reader lets go, which is what an
/// immutable snapshot needs (an epoch scheme such as crossbeam-epoch would free it once
/// readers unpin, but engines hold snapshots across batches).
#[derive(Clone)]
pub struct Publication {
    shared: Arc<Published>,
}

struct Published {
    current: ArcSwap<ClusterTables>,
    /// The generation of `current`, readable with one load: engines compare it before
    /// loading the snapshot itself.
    generation: AtomicU64,
}

impl std::fmt::Debug for Publication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publication")
            .field("generation", &self.generation())
            .finish()
    }
}

impl Publication {
    fn new(first: Arc<ClusterTables>) -> Publication {
        Publication {
            shared: Arc::new(Published {
                generation: AtomicU64::new(first.generation()),
                current: ArcSwap::new(first),
            }),
        }
    }

    fn publish(&self, next: Arc<ClusterTables>) {
        let generation = next.generation();
        self.shared.current.store(next);
        self.shared.generation.store(generation, Ordering::Release);
    }

    /// The generation of the latest snapshot.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// The latest snapshot.
    pub fn load(&self) -> Arc<ClusterTables> {
        self.shared.current.load_full()
    }
}
