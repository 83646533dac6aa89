package moon.testbed;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.DistributedFileSystem;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.protocol.HdfsConstants;
import org.apache.hadoop.security.UserGroupInformation;
import sun.misc.Signal;

/**
 * The HDFS of the storage test bed: a MiniDFSCluster whose namenode and datanodes listen on
 * 127.0.0.1 only.
 *
 * <p>Usage: {@code HdfsLauncher --dir DIR --port RPC --http-port HTTP [--datanodes N]
 * [--kerberos]}.
 *
 * <p>With {@code --kerberos} the cluster is secure: a {@link KerberosRealm} in DIR/realm,
 * Kerberos authentication on the namenode's RPC and SASL with block access tokens on the
 * datanodes' data transfer (on unprivileged ports, which Hadoop allows only with
 * {@code ignore.secure.ports.for.testing}). Its superuser is {@code hdfs}, the service
 * principal's short name, which may act for any user (a proxy user).
 *
 * <p>Keeps its storage under DIR/data (formatted at every start: it starts empty), writes
 * DIR/core-site.xml for clients, checks that a file written through the
 * namenode reads back, makes the quota directories of {@link #makeQuotaDirs}, then prints one line {@code READY hdfs://127.0.0.1:RPC
 * http://127.0.0.1:HTTP} and serves until its standard input reaches end of file (the script
 * that started it holds the other end) or it gets SIGTERM; either way it shuts the cluster down
 * cleanly and prints {@code STOPPED}.
 */
public final class HdfsLauncher {
  private static final String LOOPBACK = "127.0.0.1";

  private HdfsLauncher() {}

  public static void main(String[] args) throws Exception {
    File dir = null;
    int port = -1;
    int httpPort = -1;
    int datanodes = 1;
    boolean kerberos = false;
    for (int i = 0; i < args.length; i++) {
      String value = i + 1 < args.length ? args[i + 1] : null;
      switch (args[i]) {
        case "--dir" -> dir = new File(required(args[i], value));
        case "--port" -> port = Integer.parseInt(required(args[i], value));
        case "--http-port" -> httpPort = Integer.parseInt(required(args[i], value));
        case "--datanodes" -> datanodes = Integer.parseInt(required(args[i], value));
        case "--kerberos" -> {
          kerberos = true;
          continue;
        }
        default -> throw new IllegalArgumentException("unknown argument: " + args[i]);
      }
      i++;
    }
    if (dir == null || port <= 0 || httpPort <= 0 || datanodes < 1) {
      throw new IllegalArgumentException(
          "usage: HdfsLauncher --dir DIR --port RPC --http-port HTTP [--datanodes N] [--kerberos];"
              + " got "
              + Arrays.toString(args));
    }
    dir = dir.getAbsoluteFile();
    File data = new File(dir, "data");

    Configuration conf = loopbackConfiguration(data, httpPort);
    KerberosRealm realm = null;
    if (kerberos) {
      realm = KerberosRealm.start(new File(dir, "realm"));
      secure(conf, realm);
    }
    MiniDFSCluster cluster =
        new MiniDFSCluster.Builder(conf)
            .nameNodePort(port)
            .nameNodeHttpPort(httpPort)
            .numDataNodes(datanodes)
            // Formatted at every start: the namenode of a MiniDFSCluster does not come back
            // from its own shutdown (its name dirs are left empty), so no data survives a stop.
            .format(true)
            .manageNameDfsDirs(true)
            .manageDataDfsDirs(true)
            .build();
    // Hadoop cannot shut a cluster down from a JVM shutdown hook (its own hooks are running), so
    // SIGTERM and SIGINT only ask main to stop, as the end of standard input does.
    CountDownLatch stopRequested = new CountDownLatch(1);
    Signal.handle(new Signal("TERM"), signal -> stopRequested.countDown());
    Signal.handle(new Signal("INT"), signal -> stopRequested.countDown());
    cluster.waitActive();
    cluster.waitClusterUp();

    String url = "hdfs://" + LOOPBACK + ":" + cluster.getNameNodePort();
    writeCoreSite(new File(dir, "core-site.xml").toPath(), url, realm);
    selfCheck(conf, url);
    makeQuotaDirs(cluster.getFileSystem());
    System.out.println("READY " + url + " http://" + LOOPBACK + ":" + httpPort);
    System.out.flush();

    Thread stdinWatch =
        new Thread(
            () -> {
              awaitEndOfInput(System.in);
              stopRequested.countDown();
            },
            "hdfs-launcher-stdin");
    stdinWatch.setDaemon(true);
    stdinWatch.start();
    stopRequested.await();
    cluster.shutdown();
    if (realm != null) {
      realm.close();
    }
    System.out.println("STOPPED");
    System.out.flush();
    System.exit(0);
  }

  private static void awaitEndOfInput(InputStream in) {
    byte[] buf = new byte[256];
    try {
      while (in.read(buf) >= 0) {
        // input is ignored: only its end matters
      }
    } catch (IOException e) {
      // a broken standard input ends it as well
    }
  }

  private static String required(String flag, String value) {
    if (value == null) {
      throw new IllegalArgumentException(flag + " needs a value");
    }
    return value;
  }

  /** Every address MiniDFSCluster does not set itself, pinned to loopback. */
  private static Configuration loopbackConfiguration(File data, int httpPort) {
    Configuration conf = new HdfsConfiguration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, data.getPath());
    conf.set("hadoop.security.authentication", "simple");
    conf.set("dfs.namenode.http-address", LOOPBACK + ":" + httpPort);
    conf.set("dfs.namenode.https-address", LOOPBACK + ":0");
    conf.set("dfs.namenode.secondary.http-address", LOOPBACK + ":0");
    conf.set("dfs.namenode.secondary.https-address", LOOPBACK + ":0");
    conf.set("dfs.namenode.backup.address", LOOPBACK + ":0");
    conf.set("dfs.namenode.backup.http-address", LOOPBACK + ":0");
    conf.set("dfs.datanode.address", LOOPBACK + ":0");
    conf.set("dfs.datanode.http.address", LOOPBACK + ":0");
    conf.set("dfs.datanode.https.address", LOOPBACK + ":0");
    conf.set("dfs.datanode.ipc.address", LOOPBACK + ":0");
    conf.set("dfs.journalnode.rpc-address", LOOPBACK + ":0");
    conf.set("dfs.journalnode.http-address", LOOPBACK + ":0");
    conf.set("dfs.journalnode.https-address", LOOPBACK + ":0");
    conf.setBoolean("dfs.client.use.datanode.hostname", false);
    // Clients on this machine reach the datanode at the address it registered with.
    conf.setBoolean("dfs.datanode.use.datanode.hostname", false);
    return conf;
  }

  /**
   * Kerberos on the namenode's RPC, SASL (authentication only) with block tokens on data
   * transfer; the namenode and datanodes log in with the service principal's keytab.
   */
  private static void secure(Configuration conf, KerberosRealm realm) {
    String keytab = realm.keytab("hdfs").getPath();
    conf.set("hadoop.security.authentication", "kerberos");
    conf.set("hadoop.rpc.protection", "authentication");
    conf.set("dfs.data.transfer.protection", "authentication");
    conf.setBoolean("dfs.block.access.token.enable", true);
    conf.setBoolean("ignore.secure.ports.for.testing", true);
    conf.set("dfs.namenode.kerberos.principal", realm.servicePrincipal());
    conf.set("dfs.namenode.keytab.file", keytab);
    conf.set("dfs.datanode.kerberos.principal", realm.servicePrincipal());
    conf.set("dfs.datanode.keytab.file", keytab);
    // The superuser may act for any user (a Hadoop proxy user), as moon's own client does for
    // tenants' users; the bed listens on loopback only.
    conf.set("hadoop.proxyuser.hdfs.hosts", "*");
    conf.set("hadoop.proxyuser.hdfs.users", "*");
    UserGroupInformation.setConfiguration(conf);
  }

  private static void writeCoreSite(Path target, String url, KerberosRealm realm)
      throws IOException {
    String security =
        realm == null
            ? ""
            : "  <property><name>hadoop.security.authentication</name><value>kerberos</value>"
                + "</property>\n"
                + "  <property><name>dfs.namenode.kerberos.principal</name><value>"
                + realm.servicePrincipal()
                + "</value></property>\n"
                + "  <property><name>dfs.data.transfer.protection</name><value>authentication"
                + "</value></property>\n";
    String xml =
        "<?xml version=\"1.0\"?>\n"
            + "<!-- written by the HDFS launcher of the storage test bed -->\n"
            + "<configuration>\n"
            + "  <property><name>fs.defaultFS</name><value>"
            + url
            + "</value></property>\n"
            + "  <property><name>dfs.replication</name><value>1</value></property>\n"
            + security
            + "</configuration>\n";
    Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
    Files.writeString(tmp, xml);
    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  /**
   * Directories with quotas, for clients' tests of quota errors (setting a quota takes the
   * superuser, which clients of the bed may not be): {@code /moon-quota/space} holds 1 MiB (any
   * block, which reserves a whole block size, exceeds it) and {@code /moon-quota/names} holds 4
   * names (itself included).
   */
  private static void makeQuotaDirs(DistributedFileSystem fs) throws IOException {
    org.apache.hadoop.fs.Path space = new org.apache.hadoop.fs.Path("/moon-quota/space");
    org.apache.hadoop.fs.Path names = new org.apache.hadoop.fs.Path("/moon-quota/names");
    fs.mkdirs(space);
    fs.mkdirs(names);
    fs.setPermission(space.getParent(), new FsPermission((short) 0777));
    fs.setPermission(space, new FsPermission((short) 0777));
    fs.setPermission(names, new FsPermission((short) 0777));
    fs.setQuota(space, HdfsConstants.QUOTA_DONT_SET, 1L << 20);
    fs.setQuota(names, 4, HdfsConstants.QUOTA_DONT_SET);
  }

  /** A file written through the namenode and a datanode must read back before READY. */
  private static void selfCheck(Configuration conf, String url) throws IOException {
    byte[] expected = ("moon hdfs launcher self-check " + System.nanoTime())
        .getBytes(StandardCharsets.UTF_8);
    org.apache.hadoop.fs.Path file = new org.apache.hadoop.fs.Path("/.moon-launcher-check");
    try (FileSystem fs = FileSystem.newInstance(URI.create(url), conf)) {
      try (FSDataOutputStream out = fs.create(file, true)) {
        out.write(expected);
      }
      byte[] got;
      try (FSDataInputStream in = fs.open(file)) {
        got = in.readAllBytes();
      }
      fs.delete(file, false);
      if (!Arrays.equals(expected, got)) {
        throw new IOException("self-check: the file read back differs from the one written");
      }
    }
  }
}
