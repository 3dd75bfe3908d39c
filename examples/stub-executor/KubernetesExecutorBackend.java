// A stand-in for Spark's executor JVM, for the demo and the tests: same main class name, and on the
// decommission signal it "drains" for -Ddrain.ms milliseconds, then exits 0 as a drained executor does.
// -Dignore.signals=true makes it ignore PWR and TERM (to exercise the decommission deadline).
package org.apache.spark.scheduler.cluster.k8s;

import sun.misc.Signal;

public class KubernetesExecutorBackend {
    public static void main(String[] args) throws Exception {
        long drainMs = Long.getLong("drain.ms", 800L);
        String decommission = System.getProperty("decommission.signal", "PWR");
        if (Boolean.getBoolean("ignore.signals")) {
            Signal.handle(new Signal(decommission), s -> System.out.println("executor: ignoring SIG" + s.getName()));
            Signal.handle(new Signal("TERM"), s -> System.out.println("executor: ignoring SIGTERM"));
        } else if (!Boolean.getBoolean("no.handler")) {
            // Built before the signal: the first string concatenation of a new shape costs the JVM milliseconds
            // (an invokedynamic bootstrap), which would be counted as the hook's time by bench/decommission.py.
            String received = "executor: SIG" + decommission + " received, draining for " + drainMs + " ms";
            Signal.handle(new Signal(decommission), s -> {
                System.out.println(received);
                Thread drain = new Thread(() -> {
                    try {
                        Thread.sleep(drainMs);  // the simulated work of finishing tasks
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    System.out.println("executor: drained, exiting 0");
                    System.exit(0);
                });
                drain.start();
            });
        }
        System.out.println("ready (pid: " + ProcessHandle.current().pid() + ") executor: " + String.join(" ", args));
        Object forever = new Object();
        synchronized (forever) {
            forever.wait();
        }
    }
}
