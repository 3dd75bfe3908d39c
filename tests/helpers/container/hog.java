// A stand-in executor JVM that outgrows its container's memory limit when told to: for the OOM row.
//
// Compiled at test time by tests/helpers/container/image.py (package-private, so the file name need not match the class).
// It prints `ready (pid: N)`, then on SIGUSR1 (forwarded by lifecycle from `podman kill -s USR1`) prints
// `allocating` and keeps allocating and touching 1 MiB arrays, holding on to every one, so that with a heap
// (-Xmx) above the container's limit the kernel's OOM killer ends it before the heap is full. Triggering it
// by a signal, not at start-up, means lifecycle is already supervising (its handlers forward the signal) and
// idle when the limit is hit. SIGUSR2 cannot be used: HotSpot keeps it for thread suspension on Linux.
package org.apache.spark.scheduler.cluster.k8s;

import java.util.ArrayList;
import java.util.List;
import sun.misc.Signal;

class KubernetesExecutorBackend {
    private static final List<byte[]> HELD = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        Signal.handle(new Signal("USR1"), signal -> {
            System.out.println("allocating");
            System.out.flush();
            while (true) {
                byte[] chunk = new byte[1 << 20];
                for (int i = 0; i < chunk.length; i += 4096) {
                    chunk[i] = 1;
                }
                HELD.add(chunk);
            }
        });
        System.out.println("ready (pid: " + ProcessHandle.current().pid() + ")");
        System.out.flush();
        Object forever = new Object();
        synchronized (forever) {
            while (true) {
                forever.wait();
            }
        }
    }
}
