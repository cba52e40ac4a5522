"""SROS2 keystore for the facetrack_ros graph: CAs, governance, one enclave per node and robot.

ROS-free (Python `cryptography`); `ros2 run facetrack_ros make_keystore` is its command line,
launch/facetrack.launch.py names the enclaves with graph.enclave_path(). The layout is the one
`ros2 security create_keystore` and `create_enclave` write, so rcl finds the enclaves and
sros2's tools read the keystore:

    public/identity_ca.cert.pem, public/permissions_ca.cert.pem
    private/identity_ca.key.pem, private/permissions_ca.key.pem        (0600, folder 0700)
    enclaves/governance.xml, enclaves/governance.p7s
    enclaves/facetrack_ros[/<robot>]/<node>/                            (0700)
        cert.pem, key.pem (0600), identity_ca.cert.pem, permissions_ca.cert.pem,
        governance.p7s, permissions.xml, permissions.p7s

Unlike sros2, identity and permissions have CAs of their own (a stolen enclave certificate
cannot sign permissions, nor a permissions signer issue identities), and an enclave folder
holds copies, not symlinks, so that one robot's enclaves can be copied to it on their own.

Each node's permissions allow exactly its entry in facetrack_ros.graph.GRAPH, resolved in its
robot's namespace, plus what rclpy creates for every node; everything else is denied.
"""

from dataclasses import dataclass, field
import datetime
import os
from pathlib import Path
from typing import Iterable, Mapping
from xml.etree import ElementTree

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from facetrack_ros.graph import (enclave_path, Endpoint, GRAPH, normalize_namespace, PACKAGE,
                                 PARAMETER_EVENTS, PARAMETER_SERVICES, resolve, ROSOUT,
                                 TYPE_DESCRIPTION_SERVICE, with_builtins)

IDENTITY_CA = 'identity_ca'
PERMISSIONS_CA = 'permissions_ca'
#: rmw_fastrtps' graph discovery topic: a DDS name of its own, without the rt/ prefix.
DISCOVERY_TOPIC = 'ros_discovery_info'
#: Node names of the tools an operator enclave runs: the ros2 command line (and its daemon)
#: and rqt. Their own parameter and type description services are granted by these patterns.
OPERATOR_TOOL_NODES = ('_ros2cli_*', 'rqt_gui_py_node_*')
DEFAULT_DAYS = 365
#: CAs outlive the enclaves they sign, so a new robot or a renewal keeps the others valid.
CA_DAYS = 3650
#: Validity starts this early, for robots whose clock lags the machine that made the keystore.
CLOCK_MARGIN = datetime.timedelta(hours=1)
_SCHEMA = 'http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_{}.xsd'
_XSI = 'http://www.w3.org/2001/XMLSchema-instance'


@dataclass
class Grant:
    """DDS topic names an enclave may publish and subscribe to."""

    publish: set[str] = field(default_factory=set)
    subscribe: set[str] = field(default_factory=set)

    def allow_topics(self, publish: Iterable[str] = (), subscribe: Iterable[str] = ()) -> None:
        """Allow publishing or subscribing to ROS topics, given by fully qualified name."""
        self.publish.update(f'rt{name}' for name in publish)
        self.subscribe.update(f'rt{name}' for name in subscribe)

    def allow_services(self, serve: Iterable[str] = (), call: Iterable[str] = ()) -> None:
        """Allow serving or calling ROS services, given by fully qualified name."""
        for name in serve:
            self.subscribe.add(f'rq{name}Request')
            self.publish.add(f'rr{name}Reply')
        for name in call:
            self.publish.add(f'rq{name}Request')
            self.subscribe.add(f'rr{name}Reply')


def enclave_dir(keystore: str | Path, enclave: str) -> Path:
    """Return the folder of an enclave in a keystore."""
    return Path(keystore) / 'enclaves' / enclave.strip('/')


def node_grant(node: str, namespace: str, bindings: Mapping[str, str] | None = None) -> Grant:
    """Return what node may do in namespace: its GRAPH entry plus rclpy's own endpoints.

    Endpoints with an unbound placeholder (a camera relay topic not named) are left out.
    """
    interfaces = with_builtins(GRAPH[node])

    def names(endpoints: tuple[Endpoint, ...]) -> list[str]:
        bound = (endpoint.bind(bindings or {}) for endpoint in endpoints)
        return [resolve(e.name, node, namespace) for e in bound if e is not None]

    grant = Grant({DISCOVERY_TOPIC}, {DISCOVERY_TOPIC})
    grant.allow_topics(names(interfaces.publishes), names(interfaces.subscribes))
    grant.allow_services(names(interfaces.serves), names(interfaces.calls))
    return grant


def operator_grant(namespaces: Iterable[str]) -> Grant:
    """Return what an operator's tools (ros2 CLI, rqt) may do with the robots in namespaces.

    They call every service of every node (the package's, parameters, lifecycle) and read
    every topic the nodes publish; they publish nothing but their own log and parameter
    events, and serve only their own tool nodes' parameter and type description services.
    """
    grant = Grant({DISCOVERY_TOPIC}, {DISCOVERY_TOPIC})
    grant.allow_topics(publish=(ROSOUT.name, PARAMETER_EVENTS.name))
    own = (*PARAMETER_SERVICES, TYPE_DESCRIPTION_SERVICE)
    grant.allow_services(serve=[resolve(e.name, tool, '/') for tool in OPERATOR_TOOL_NODES
                                for e in own])
    for namespace in namespaces:
        for node, interfaces in GRAPH.items():
            full = with_builtins(interfaces)
            grant.allow_topics(subscribe=[resolve(e.name, node, namespace)
                                          for e in full.publishes])
            grant.allow_services(call=[resolve(e.name, node, namespace) for e in full.serves])
    return grant


def governance_xml(domain_id: int) -> bytes:
    """Return the domain's governance: authenticated members only, access control on all topics.

    Discovery and liveliness are encrypted; every topic's data is encrypted once (AES-GCM,
    which also authenticates it) and its submessages and RTPS messages are signed. sros2's
    default encrypts all three layers, which encrypts each camera image three times over.
    """
    root = ElementTree.Element('dds', {'xmlns:xsi': _XSI,
                                       'xsi:noNamespaceSchemaLocation': _SCHEMA.format(
                                           'governance')})
    rule = _sub(_sub(root, 'domain_access_rules'), 'domain_rule')
    _sub(_sub(rule, 'domains'), 'id', str(domain_id))
    for tag, text in (('allow_unauthenticated_participants', 'false'),
                      ('enable_join_access_control', 'true'),
                      ('discovery_protection_kind', 'ENCRYPT'),
                      ('liveliness_protection_kind', 'ENCRYPT'),
                      ('rtps_protection_kind', 'SIGN')):
        _sub(rule, tag, text)
    topic_rule = _sub(_sub(rule, 'topic_access_rules'), 'topic_rule')
    for tag, text in (('topic_expression', '*'),
                      ('enable_discovery_protection', 'true'),
                      ('enable_liveliness_protection', 'true'),
                      ('enable_read_access_control', 'true'),
                      ('enable_write_access_control', 'true'),
                      ('metadata_protection_kind', 'SIGN'),
                      ('data_protection_kind', 'ENCRYPT')):
        _sub(topic_rule, tag, text)
    return _to_bytes(root)


def permissions_xml(enclave: str, grant: Grant, domain_id: int,
                    not_before: datetime.datetime, not_after: datetime.datetime) -> bytes:
    """Return an enclave's permissions: one grant, allowing what grant lists, denying the rest."""
    root = ElementTree.Element('dds', {'xmlns:xsi': _XSI,
                                       'xsi:noNamespaceSchemaLocation': _SCHEMA.format(
                                           'permissions')})
    element = _sub(_sub(root, 'permissions'), 'grant', name=enclave)
    _sub(element, 'subject_name', _subject(enclave).rfc4514_string())
    validity = _sub(element, 'validity')
    _sub(validity, 'not_before', _xml_time(not_before))
    _sub(validity, 'not_after', _xml_time(not_after))
    rule = _sub(element, 'allow_rule')
    _sub(_sub(rule, 'domains'), 'id', str(domain_id))
    for tag, topics in (('publish', grant.publish), ('subscribe', grant.subscribe)):
        if topics:
            listed = _sub(_sub(rule, tag), 'topics')
            for topic in sorted(topics):
                _sub(listed, 'topic', topic)
    _sub(element, 'default', 'DENY')
    return _to_bytes(root)


def sign(content: bytes, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bytes:
    """Return content signed as S/MIME (detached, text), the form DDS Security reads."""
    return (pkcs7.PKCS7SignatureBuilder().set_data(content)
            .add_signer(cert, key, hashes.SHA256())
            .sign(serialization.Encoding.SMIME,
                  [pkcs7.PKCS7Options.Text, pkcs7.PKCS7Options.DetachedSignature]))


@dataclass
class _Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def create_keystore(root: str | Path, robots: Iterable[str] = ('/',), domain_id: int = 0,
                    days: int = DEFAULT_DAYS, operators: Iterable[str] = (),
                    bindings: Mapping[str, str] | None = None) -> list[str]:
    """Write (or update) a keystore; return the enclaves written.

    robots: namespaces, one per robot ('/' for a robot without one); every node of GRAPH gets
    an enclave in each. operators: names of tool enclaves /facetrack_ros/<name> allowed to call
    every service and read every topic of those robots (of this call's robots only).
    bindings: placeholder values (`relay`: the camera's relay topic). Existing CAs are kept, so
    enclaves made before stay valid; the governance and the listed enclaves are rewritten with
    new keys. Raises ValueError for an invalid option or a kept CA that expires too early.
    """
    if days < 1:
        raise ValueError(f'days must be at least 1, not {days}')
    if not 0 <= domain_id <= 232:
        raise ValueError(f'ROS domain id must be within 0..232, not {domain_id}')
    namespaces = sorted({normalize_namespace(robot) for robot in robots})
    operator_paths = [enclave_path(name) for name in operators]
    root = Path(root)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    not_before, not_after = now - CLOCK_MARGIN, now + datetime.timedelta(days=days)
    for folder in (root / 'public', root / 'private', root / 'enclaves'):
        folder.mkdir(parents=True, exist_ok=True)
    (root / 'private').chmod(0o700)
    ca_days = max(CA_DAYS, days + 1)
    identity = _load_or_create_ca(root, IDENTITY_CA, not_before, ca_days)
    permissions = _load_or_create_ca(root, PERMISSIONS_CA, not_before, ca_days)
    for authority in (identity, permissions):
        if authority.cert.not_valid_after_utc < not_after:
            raise ValueError(
                f'the CA {authority.cert.subject.rfc4514_string()} in {root} expires on '
                f'{authority.cert.not_valid_after_utc:%Y-%m-%d}, before enclaves valid for '
                f'{days} days would: ask for fewer days, or make a new keystore')
    governance = governance_xml(domain_id)
    signed_governance = sign(governance, permissions.cert, permissions.key)
    _write(root / 'enclaves' / 'governance.xml', governance)
    _write(root / 'enclaves' / 'governance.p7s', signed_governance)

    grants = {enclave_path(node, ns): node_grant(node, ns, bindings)
              for ns in namespaces for node in GRAPH}
    grants.update({path: operator_grant(namespaces) for path in operator_paths})
    for enclave, grant in grants.items():
        folder = enclave_dir(root, enclave)
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)     # it holds the enclave's private key
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(_subject(enclave), key.public_key(), identity, not_before,
                            not_after, is_ca=False)
        document = permissions_xml(enclave, grant, domain_id, not_before, not_after)
        _write(folder / 'key.pem', _key_pem(key), private=True)
        _write(folder / 'cert.pem', cert.public_bytes(serialization.Encoding.PEM))
        _write(folder / 'identity_ca.cert.pem', _cert_pem(identity.cert))
        _write(folder / 'permissions_ca.cert.pem', _cert_pem(permissions.cert))
        _write(folder / 'governance.p7s', signed_governance)
        _write(folder / 'permissions.xml', document)
        _write(folder / 'permissions.p7s', sign(document, permissions.cert, permissions.key))
    return list(grants)


def _load_or_create_ca(root: Path, name: str, not_before: datetime.datetime,
                       days: int) -> _Authority:
    cert_path = root / 'public' / f'{name}.cert.pem'
    key_path = root / 'private' / f'{name}.key.pem'
    if cert_path.is_file() and key_path.is_file():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        key_path.chmod(0o600)
        return _Authority(x509.load_pem_x509_certificate(cert_path.read_bytes()), key)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f'{PACKAGE} {name}')])
    cert = _certificate(subject, key.public_key(), None, not_before,
                        not_before + datetime.timedelta(days=days), is_ca=True, key=key)
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, _cert_pem(cert))
    return _Authority(cert, key)


def _certificate(subject: x509.Name, public_key: ec.EllipticCurvePublicKey,
                 issuer: _Authority | None, not_before: datetime.datetime,
                 not_after: datetime.datetime, is_ca: bool,
                 key: ec.EllipticCurvePrivateKey | None = None) -> x509.Certificate:
    """Return a certificate signed by issuer (self-signed with key when issuer is None).

    P-256 keys and SHA-256, as DDS Security's builtin authentication expects. CAs also get
    digitalSignature: the permissions CA signs the governance and permissions documents
    itself, and S/MIME verification refuses a signer without it.
    """
    signer_key = key if issuer is None else issuer.key
    issuer_name = subject if issuer is None else issuer.cert.subject
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(issuer_name).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None),
                              critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, content_commitment=False,
                   key_encipherment=False, data_encipherment=False, key_agreement=False,
                   key_cert_sign=is_ca, crl_sign=is_ca, encipher_only=False,
                   decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   signer_key.public_key()), critical=False))
    return builder.sign(signer_key, hashes.SHA256())


def _subject(enclave: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, enclave)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    """Replace path with data; a private file is 0600 from its first byte."""
    temporary = path.with_name(f'.{path.name}.tmp')
    mode = 0o600 if private else 0o644
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(descriptor, mode)     # also when a stale temporary file had another mode
    with os.fdopen(descriptor, 'wb') as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def _sub(parent: ElementTree.Element, tag: str, text: str | None = None,
         **attributes: str) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, tag, attributes)
    element.text = text
    return element


def _to_bytes(root: ElementTree.Element) -> bytes:
    ElementTree.indent(root, space='  ')
    text = ElementTree.tostring(root, encoding='unicode')
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{text}\n'.encode()


def _xml_time(moment: datetime.datetime) -> str:
    """Return an xs:dateTime in UTC without a zone suffix, as sros2 writes validity."""
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S')
