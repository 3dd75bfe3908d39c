// A stand-in for Spark's executor JVM: the real main class name, the real decommission signal handler.
//
// Compiled at test time by tests/integration/test_decommission_jvm.py (`javac -d DIR decom.java`: the class
// is package-private, so the file name need not match it). Spark's CoarseGrainedExecutorBackend registers a SIGPWR
// handler with sun.misc.Signal when spark.decommission.enabled=true; this does the same, prints
// `ready (pid: N)` once the handler is in place, and on SIGPWR prints `draining`, waits the drain delay
// (the work a real executor does migrating blocks) and exits 0.
//
// Behaviour, from the arguments or else the environment (Spark's own executor arguments are ignored):
//   --drain-ms N        / DECOM_DRAIN_MS=N           drain delay in milliseconds (default 300)
//   --ignore-pwr-term   / DECOM_BEHAVIOUR=stubborn   ignore SIGPWR and SIGTERM (only SIGKILL ends it)
//   --no-pwr-handler    / DECOM_BEHAVIOUR=unhandled  register nothing: SIGPWR's default action would kill it,
//                                                    SIGTERM runs the JVM's own shutdown (exit 143)
package org.apache.spark.scheduler.cluster.k8s;

import sun.misc.Signal;
import sun.misc.SignalHandler;

class KubernetesExecutorBackend {
    private static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        String env = System.getenv("DECOM_DRAIN_MS");
        long drainMs = env == null || env.isEmpty() ? 300 : Long.parseLong(env);
        String behaviour = System.getenv().getOrDefault("DECOM_BEHAVIOUR", "drain");
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--drain-ms") && i + 1 < args.length) {
                drainMs = Long.parseLong(args[++i]);
            } else if (args[i].equals("--ignore-pwr-term")) {
                behaviour = "stubborn";
            } else if (args[i].equals("--no-pwr-handler")) {
                behaviour = "unhandled";
            }
        }
        final long delay = drainMs;
        switch (behaviour) {
            case "stubborn":
                Signal.handle(new Signal("PWR"), SignalHandler.SIG_IGN);
                Signal.handle(new Signal("TERM"), SignalHandler.SIG_IGN);
                break;
            case "unhandled":
                break;
            default:
                Signal.handle(new Signal("PWR"), signal -> {
                    say("draining");
                    try {
                        Thread.sleep(delay);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    say("drained");
                    System.exit(0);
                });
        }
        say("ready (pid: " + ProcessHandle.current().pid() + ")");
        Object forever = new Object();
        synchronized (forever) {
            while (true) {
                forever.wait();
            }
        }
    }
}
