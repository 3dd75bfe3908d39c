// A stand-in executor JVM that reports who it runs as, then exits: for the container tests' identity rows.
//
// Compiled at test time by tests/helpers/container/image.py (`javac -d DIR probe.java`; package-private, so the file
// name need not match the class). Its main class is Spark's executor backend, so `lifecycle executor` starts it
// through the real executor command line. It prints `ready (pid: N)`, then one `key=value` line for each of
// user.name, user.home and java.home (as the JVM resolves them: user.name comes from getpwuid(3) through
// NSS, which is where nss_wrapper answers), then `done`, and exits with PROBE_EXIT (default 0).
package org.apache.spark.scheduler.cluster.k8s;

class KubernetesExecutorBackend {
    public static void main(String[] args) {
        System.out.println("ready (pid: " + ProcessHandle.current().pid() + ")");
        for (String key : new String[] {"user.name", "user.home", "java.home"}) {
            System.out.println(key + "=" + System.getProperty(key));
        }
        System.out.println("done");
        System.out.flush();
        String code = System.getenv("PROBE_EXIT");
        System.exit(code == null || code.isEmpty() ? 0 : Integer.parseInt(code));
    }
}
