// Chapter 2's Monte Carlo π on the JVM: the same xorshift64* arithmetic as virtlab's
// `threads::scaling::monte_carlo_hits` (Java's long is 64-bit; >>> is Rust's unsigned >>).
//
//     javac -d OUT Hits.java && java -cp OUT Hits SEED SAMPLES REPEATS
//
// Prints "version V", then one line per repeat, "hits nanoseconds", timed by the JVM's own
// clock.
public final class Hits {
    static long hits(long seed, long samples) {
        long s = seed * 0x9E3779B97F4A7C15L | 1L;
        long hits = 0;
        for (long i = 0; i < samples; i++) {
            s ^= s >>> 12;
            s ^= s << 25;
            s ^= s >>> 27;
            double x = (double) ((s * 0x2545F4914F6CDD1DL) >>> 11) / 9007199254740992.0;
            s ^= s >>> 12;
            s ^= s << 25;
            s ^= s >>> 27;
            double y = (double) ((s * 0x2545F4914F6CDD1DL) >>> 11) / 9007199254740992.0;
            if (x * x + y * y <= 1.0) {
                hits++;
            }
        }
        return hits;
    }

    public static void main(String[] args) {
        long seed = Long.parseLong(args[0]);
        long samples = Long.parseLong(args[1]);
        int repeats = Integer.parseInt(args[2]);
        System.out.println("version " + System.getProperty("java.vm.name") + " "
            + System.getProperty("java.version"));
        for (int r = 0; r < repeats; r++) {
            long started = System.nanoTime();
            long found = hits(seed, samples);
            long ns = System.nanoTime() - started;
            System.out.println(found + " " + ns);
        }
    }
}
