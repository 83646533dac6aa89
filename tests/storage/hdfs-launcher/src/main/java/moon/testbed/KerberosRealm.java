package moon.testbed;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Properties;
import org.apache.hadoop.minikdc.MiniKdc;

/**
 * The Kerberos realm of the secure HDFS: a MiniKdc on 127.0.0.1 (an ephemeral TCP port) with
 * the service principal {@code hdfs/localhost} and the user principals of {@link #USERS}, each
 * with a keytab of its own in DIR ({@code NAME.keytab}, mode 0600), and {@code DIR/krb5.conf}
 * for clients linked to MIT Kerberos (point {@code KRB5_CONFIG} at it).
 */
final class KerberosRealm implements AutoCloseable {
  /** The namenode's and the datanodes' principal, without the realm. */
  static final String SERVICE = "hdfs/localhost";
  /** Users of the bed: tenants' principals in tests (the home of one is closed to the other). */
  static final String[] USERS = {"alice", "bob"};

  private final MiniKdc kdc;
  private final File dir;

  private KerberosRealm(MiniKdc kdc, File dir) {
    this.kdc = kdc;
    this.dir = dir;
  }

  /** Starts the KDC with its state in DIR/kdc and writes the keytabs and krb5.conf to DIR. */
  static KerberosRealm start(File dir) throws Exception {
    Files.createDirectories(dir.toPath());
    File work = new File(dir, "kdc");
    Files.createDirectories(work.toPath());
    Properties conf = MiniKdc.createConf();
    conf.setProperty(MiniKdc.KDC_BIND_ADDRESS, "127.0.0.1");
    conf.setProperty(MiniKdc.KDC_PORT, "0");
    conf.setProperty(MiniKdc.TRANSPORT, "TCP");
    MiniKdc kdc = new MiniKdc(conf, work);
    // MiniKdc also points this JVM's Kerberos (java.security.krb5.conf) at its own krb5.conf.
    kdc.start();
    KerberosRealm realm = new KerberosRealm(kdc, dir);
    realm.addPrincipal("hdfs", SERVICE);
    for (String user : USERS) {
      realm.addPrincipal(user, user);
    }
    realm.writeClientConfig();
    return realm;
  }

  String realm() {
    return kdc.getRealm();
  }

  /** The keytab of {@code name} (one of {@code hdfs} or {@link #USERS}). */
  File keytab(String name) {
    return new File(dir, name + ".keytab");
  }

  String servicePrincipal() {
    return SERVICE + "@" + realm();
  }

  private void addPrincipal(String name, String principal) throws Exception {
    File keytab = keytab(name);
    Files.deleteIfExists(keytab.toPath());
    kdc.createPrincipal(keytab, principal);
    Files.setPosixFilePermissions(keytab.toPath(), PosixFilePermissions.fromString("rw-------"));
  }

  /**
   * krb5.conf for MIT Kerberos clients: TCP only (the KDC listens on no UDP port), no DNS
   * (the service's host name {@code localhost} is taken as it is), tickets kept in memory.
   */
  private void writeClientConfig() throws IOException {
    String conf =
        "# written by the HDFS launcher of the storage test bed\n"
            + "[libdefaults]\n"
            + "  default_realm = " + realm() + "\n"
            + "  dns_lookup_kdc = false\n"
            + "  dns_lookup_realm = false\n"
            + "  dns_canonicalize_hostname = false\n"
            + "  rdns = false\n"
            + "  udp_preference_limit = 1\n"
            + "  default_ccache_name = MEMORY:moon-test-bed\n"
            + "[realms]\n"
            + "  " + realm() + " = {\n"
            + "    kdc = 127.0.0.1:" + kdc.getPort() + "\n"
            + "  }\n"
            + "[domain_realm]\n"
            + "  localhost = " + realm() + "\n";
    Path target = new File(dir, "krb5.conf").toPath();
    Path tmp = target.resolveSibling("krb5.conf.tmp");
    Files.writeString(tmp, conf);
    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  @Override
  public void close() {
    kdc.stop();
  }
}
