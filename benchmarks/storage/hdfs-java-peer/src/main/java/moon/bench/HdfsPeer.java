package moon.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.EnumSet;
import java.util.Random;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.CreateFlag;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's Java client writing and reading one large file, timed inside one JVM: the peer of
 * moon's HDFS store in benchmarks/storage_hdfs.sh.
 *
 * <p>Usage: {@code HdfsPeer --url hdfs://HOST:PORT --conf-dir DIR --dir HDFS_DIR --size BYTES
 * --chunk BYTES --warmup BYTES}.
 *
 * <p>Connects, writes and reads a warm-up file of {@code --warmup} bytes (untimed: the JIT, the
 * connections), then prints {@code READY}. For each line {@code round NAME CREATE} on standard
 * input it writes {@code HDFS_DIR/NAME} ({@code --size} bytes, {@code --chunk} bytes per {@code
 * write}), closes it, reads it back to the end ({@code --chunk} bytes per {@code read}), checks
 * the length, deletes it and prints {@code ROUND NAME WRITE_NS READ_NS WRITE_CPU_NS READ_CPU_NS}
 * (the CPU time of the whole JVM, every thread included, during each). Standard input's end
 * ends it. Errors go to standard error, with a non-zero exit.
 *
 * <p>CREATE is {@code default}, {@code FileSystem.create(path, true)}, or {@code sync}, the same
 * with {@link CreateFlag#SYNC_BLOCK}: the datanodes then write each block through to disk before
 * they finalize it, as a close of the Rust client always asks.
 */
public final class HdfsPeer {
  private HdfsPeer() {}

  public static void main(String[] args) throws Exception {
    String url = null;
    String confDir = null;
    String dir = null;
    long size = -1;
    int chunk = -1;
    long warmup = -1;
    for (int i = 0; i + 1 < args.length; i += 2) {
      String value = args[i + 1];
      switch (args[i]) {
        case "--url" -> url = value;
        case "--conf-dir" -> confDir = value;
        case "--dir" -> dir = value;
        case "--size" -> size = Long.parseLong(value);
        case "--chunk" -> chunk = Integer.parseInt(value);
        case "--warmup" -> warmup = Long.parseLong(value);
        default -> throw new IllegalArgumentException("unknown argument: " + args[i]);
      }
    }
    if (args.length % 2 != 0 || url == null || dir == null || size <= 0 || chunk <= 0 || warmup < 0) {
      throw new IllegalArgumentException(
          "usage: HdfsPeer --url hdfs://HOST:PORT [--conf-dir DIR] --dir HDFS_DIR --size BYTES"
              + " --chunk BYTES --warmup BYTES");
    }

    Configuration conf = new Configuration();
    if (confDir != null) {
      conf.addResource(new Path(confDir, "core-site.xml"));
    }
    byte[] buffer = new byte[chunk];
    new Random(1).nextBytes(buffer);
    try (FileSystem fs = FileSystem.newInstance(URI.create(url), conf)) {
      Path base = new Path(dir);
      fs.mkdirs(base);
      if (warmup > 0) {
        Path path = new Path(base, "warmup");
        write(fs, path, warmup, buffer, false);
        read(fs, path, warmup, buffer);
        fs.delete(path, false);
      }
      System.out.println("READY");
      System.out.flush();

      BufferedReader commands =
          new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
      String line;
      while ((line = commands.readLine()) != null) {
        String[] words = line.trim().split("\\s+");
        if (words.length != 3
            || !words[0].equals("round")
            || !(words[2].equals("sync") || words[2].equals("default"))) {
          throw new IllegalArgumentException("unknown command: " + line);
        }
        Path path = new Path(base, words[1]);
        long cpu0 = cpuNs();
        long writeNs = write(fs, path, size, buffer, words[2].equals("sync"));
        long cpu1 = cpuNs();
        long readNs = read(fs, path, size, buffer);
        long cpu2 = cpuNs();
        fs.delete(path, false);
        System.out.println(
            "ROUND " + words[1] + " " + writeNs + " " + readNs + " " + (cpu1 - cpu0) + " "
                + (cpu2 - cpu1));
        System.out.flush();
      }
      fs.delete(base, true);
    }
  }

  /** The CPU time of this JVM so far, in nanoseconds. */
  private static long cpuNs() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  /**
   * Writes {@code size} bytes to a new file at {@code path}, each block synced to disk when
   * {@code syncBlock}; the nanoseconds from create to close.
   */
  private static long write(FileSystem fs, Path path, long size, byte[] buffer, boolean syncBlock)
      throws IOException {
    long start = System.nanoTime();
    try (FSDataOutputStream out = create(fs, path, syncBlock)) {
      long left = size;
      while (left > 0) {
        int n = (int) Math.min(buffer.length, left);
        out.write(buffer, 0, n);
        left -= n;
      }
    }
    return System.nanoTime() - start;
  }

  private static FSDataOutputStream create(FileSystem fs, Path path, boolean syncBlock)
      throws IOException {
    if (!syncBlock) {
      return fs.create(path, true);
    }
    // What create(path, true) passes, plus SYNC_BLOCK.
    return fs.create(
        path,
        FsPermission.getFileDefault().applyUMask(FsPermission.getUMask(fs.getConf())),
        EnumSet.of(CreateFlag.CREATE, CreateFlag.OVERWRITE, CreateFlag.SYNC_BLOCK),
        fs.getConf().getInt("io.file.buffer.size", 4096),
        fs.getDefaultReplication(path),
        fs.getDefaultBlockSize(path),
        null);
  }

  /** Reads the file at {@code path} to its end; the nanoseconds from open to close. */
  private static long read(FileSystem fs, Path path, long size, byte[] buffer) throws IOException {
    long start = System.nanoTime();
    long total = 0;
    try (FSDataInputStream in = fs.open(path)) {
      int n;
      while ((n = in.read(buffer, 0, buffer.length)) > 0) {
        total += n;
      }
    }
    long elapsed = System.nanoTime() - start;
    if (total != size) {
      throw new IOException("read " + total + " bytes of " + path + ", wrote " + size);
    }
    return elapsed;
  }
}
