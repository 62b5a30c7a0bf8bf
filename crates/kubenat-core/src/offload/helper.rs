//! A helper thread that faults in, and frees, the memory an engine's connection tables
//! ask for: the embedder's side of the offload loop, ready-made.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use super::{Memory, MemoryRequest};
use crate::Engine;

enum Job {
    Fault(MemoryRequest),
    Free(Memory),
}

/// The other end of [`crate::offload`]: a thread of its own, and between batches
/// [`MemoryHelper::tend`] hands the engine what came back and the thread what the engine
/// wants or released. Where no thread can start (WebAssembly), `tend` does the work
/// itself, as an engine that grows its own tables would.
pub struct MemoryHelper {
    jobs: Option<Sender<Job>>,
    fulfilled: Receiver<Memory>,
    thread: Option<JoinHandle<()>>,
}

impl MemoryHelper {
    /// Starts the thread, and sets `engine` to offload its memory to it.
    pub fn start(engine: &mut Engine) -> MemoryHelper {
        engine.offload_memory();
        // What the tables want from the start is faulted in here, before any batch.
        while let Some(request) = engine.memory_wanted() {
            let _ = engine.provide_memory(request.fulfil());
        }
        let (jobs, inbox) = channel::<Job>();
        let (done, fulfilled) = channel();
        let thread = std::thread::Builder::new()
            .name("memory helper".into())
            .spawn(move || {
                for job in inbox {
                    match job {
                        Job::Fault(request) => {
                            if done.send(request.fulfil()).is_err() {
                                return;
                            }
                        }
                        Job::Free(memory) => drop(memory),
                    }
                }
            })
            .ok();
        MemoryHelper {
            jobs: Some(jobs),
            fulfilled,
            thread,
        }
    }

    /// Between batches: memory that came back goes to the engine (what it cannot use any
    /// more goes back to be freed), and what the engine wants or released to the thread.
    /// Without the thread (it could not start), everything is done here.
    pub fn tend(&self, engine: &mut Engine) {
        while let Ok(memory) = self.fulfilled.try_recv() {
            if let Err(unused) = engine.provide_memory(memory) {
                self.send(Job::Free(unused), engine);
            }
        }
        while let Some(request) = engine.memory_wanted() {
            self.send(Job::Fault(request), engine);
        }
        while let Some(released) = engine.memory_released() {
            self.send(Job::Free(released), engine);
        }
    }

    fn send(&self, job: Job, engine: &mut Engine) {
        let job = match (&self.thread, &self.jobs) {
            (Some(_), Some(jobs)) => match jobs.send(job) {
                Ok(()) => return,
                Err(unsent) => unsent.0,
            },
            _ => job,
        };
        if let Job::Fault(request) = job {
            let _ = engine.provide_memory(request.fulfil());
        }
    }
}

impl Drop for MemoryHelper {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
