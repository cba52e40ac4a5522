"""The SROS2 keystore from `make_keystore`: layout, modes, signatures and exact permissions.

The PyPI Fast DDS here has no DDS Security, so no secured graph runs in these tests: they check
the files as Fast DDS would read them (OpenSSL verifies the certificates and the S/MIME
signatures) and the permissions against facetrack_ros.graph, the table that
test_graph_table.py checks against the running nodes.
"""

import datetime
import os
from pathlib import Path
import shutil
import stat
import subprocess
from xml.etree import ElementTree

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
import pytest

from facetrack_ros.graph import GRAPH, RELAY, resolve, with_builtins
from facetrack_ros.graph_runner import executable
from facetrack_ros.graph import enclave_path
from facetrack_ros.keystore import create_keystore

DOMAIN = 7
DAYS = 30
ROBOTS = ('/', 'r1', 'r2')
RELAY_TOPIC = 'usb_cam/image_raw'
#: The files of an enclave folder, as `ros2 security create_enclave` writes them.
ENCLAVE_FILES = {'cert.pem', 'key.pem', 'identity_ca.cert.pem', 'permissions_ca.cert.pem',
                 'governance.p7s', 'permissions.xml', 'permissions.p7s'}
OPENSSL = shutil.which('openssl')
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason='the openssl command is not installed')


@pytest.fixture(scope='module')
def keystore(tmp_path_factory) -> Path:
    """Run the installed `make_keystore` command, as `ros2 run facetrack_ros` would."""
    root = tmp_path_factory.mktemp('keystore') / 'ks'
    result = subprocess.run(
        [executable('make_keystore'), str(root), '--robots', *ROBOTS, '--operator', 'operator',
         '--domain-id', str(DOMAIN), '--days', str(DAYS), '--camera-relay', RELAY_TOPIC],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '/facetrack_ros/r2/frame_history' in result.stdout
    return root


def _enclaves() -> list[str]:
    paths = [f'/facetrack_ros/{node}' for node in GRAPH]
    paths += [f'/facetrack_ros/{robot}/{node}' for robot in ROBOTS if robot != '/'
              for node in GRAPH]
    return paths + ['/facetrack_ros/operator']


def _folder(root: Path, enclave: str) -> Path:
    return root / 'enclaves' / enclave.lstrip('/')


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _openssl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=30)


def _grant(root: Path, enclave: str) -> tuple[ElementTree.Element, dict[str, set[str]]]:
    """Return an enclave's one grant and its {'publish': topics, 'subscribe': topics}."""
    document = ElementTree.parse(_folder(root, enclave) / 'permissions.xml').getroot()
    grants = document.findall('permissions/grant')
    assert len(grants) == 1
    rules = grants[0].findall('allow_rule')
    assert len(rules) == 1 and not grants[0].findall('deny_rule')
    return grants[0], {kind: {t.text for t in rules[0].findall(f'{kind}/topics/topic')}
                       for kind in ('publish', 'subscribe')}


def test_enclave_path():
    """One enclave per node and robot namespace, as the launch file names them."""
    assert enclave_path('tracker') == '/facetrack_ros/tracker'
    assert enclave_path('tracker', '/') == '/facetrack_ros/tracker'
    assert enclave_path('tracker', 'r1') == '/facetrack_ros/r1/tracker'
    assert enclave_path('tracker', '/site/r1/') == '/facetrack_ros/site/r1/tracker'
    for namespace in ('1robot', 'r-1', 'r1//x', 'é'):
        with pytest.raises(ValueError):
            enclave_path('tracker', namespace)
    with pytest.raises(ValueError):
        enclave_path('../tracker')


def test_resolve():
    """Relative, private and absolute names resolve as rcl resolves them."""
    assert resolve('image_raw', 'camera', '/') == '/image_raw'
    assert resolve('image_raw', 'camera', 'r1') == '/r1/image_raw'
    assert resolve('~/get_state', 'detector', '/r1') == '/r1/detector/get_state'
    assert resolve('~/get_state', 'detector', '') == '/detector/get_state'
    assert resolve('/diagnostics', 'camera', '/r1') == '/diagnostics'


def test_layout_and_private_modes(keystore):
    """The sros2 layout; keys 0600 in 0700 folders; copies, not symlinks."""
    assert {p.name for p in (keystore / 'public').iterdir()} == {
        'identity_ca.cert.pem', 'permissions_ca.cert.pem'}
    assert {p.name for p in (keystore / 'private').iterdir()} == {
        'identity_ca.key.pem', 'permissions_ca.key.pem'}
    assert _mode(keystore / 'private') == 0o700
    found = {'/' + str(p.parent.relative_to(keystore / 'enclaves'))
             for p in (keystore / 'enclaves').rglob('key.pem')}
    assert found == set(_enclaves())
    keys = list(keystore.rglob('*.key.pem')) + list(keystore.rglob('key.pem'))
    assert len(keys) == 2 + len(found)
    for key in keys:
        assert _mode(key) == 0o600, key
    for enclave in found:
        folder = _folder(keystore, enclave)
        assert {p.name for p in folder.iterdir()} == ENCLAVE_FILES
        assert _mode(folder) == 0o700
        assert not any(p.is_symlink() for p in folder.iterdir())
        assert (folder / 'identity_ca.cert.pem').read_bytes() == (
            keystore / 'public' / 'identity_ca.cert.pem').read_bytes()
        assert (folder / 'governance.p7s').read_bytes() == (
            keystore / 'enclaves' / 'governance.p7s').read_bytes()
    for path in keystore.rglob('*'):
        if path.is_file() and 'key' not in path.name:
            assert not _mode(path) & 0o022, f'{path} is writable by others'


def test_files_parse_and_keys_match(keystore):
    """Every XML parses; every key is P-256 and belongs to the certificate beside it."""
    for path in keystore.rglob('*.xml'):
        ElementTree.parse(path)
    for enclave in _enclaves():
        folder = _folder(keystore, enclave)
        key = serialization.load_pem_private_key((folder / 'key.pem').read_bytes(), None)
        assert isinstance(key.curve, ec.SECP256R1)
        assert key.public_key() == _cert(folder / 'cert.pem').public_key()
    for name in ('identity_ca', 'permissions_ca'):
        key = serialization.load_pem_private_key(
            (keystore / 'private' / f'{name}.key.pem').read_bytes(), None)
        assert key.public_key() == _cert(keystore / 'public' / f'{name}.cert.pem').public_key()


def test_certificates_verify_against_the_identity_ca(keystore):
    """Enclave certificates come from the identity CA, name their enclave, last --days.

    Not from the permissions CA: the two CAs are distinct and self-signed.
    """
    identity = _cert(keystore / 'public' / 'identity_ca.cert.pem')
    permissions = _cert(keystore / 'public' / 'permissions_ca.cert.pem')
    assert identity.public_key() != permissions.public_key()
    for ca in (identity, permissions):
        ca.verify_directly_issued_by(ca)
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    now = datetime.datetime.now(datetime.timezone.utc)
    for enclave in _enclaves():
        cert = _cert(_folder(keystore, enclave) / 'cert.pem')
        cert.verify_directly_issued_by(identity)
        with pytest.raises((ValueError, InvalidSignature)):
            cert.verify_directly_issued_by(permissions)
        assert cert.subject.rfc4514_string() == f'CN={enclave}'
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert cert.not_valid_before_utc <= now
        lifetime = cert.not_valid_after_utc - now
        assert datetime.timedelta(days=DAYS - 1) < lifetime <= datetime.timedelta(days=DAYS)


@needs_openssl
def test_openssl_verifies_certificates(keystore):
    """OpenSSL, which Fast DDS uses, accepts each certificate with the identity CA only."""
    identity = str(keystore / 'public' / 'identity_ca.cert.pem')
    permissions = str(keystore / 'public' / 'permissions_ca.cert.pem')
    certs = [str(_folder(keystore, e) / 'cert.pem') for e in _enclaves()]
    result = _openssl('verify', '-x509_strict', '-CAfile', identity, *certs)
    assert result.returncode == 0 and result.stdout.count(': OK') == len(certs), result.stderr
    assert _openssl('verify', '-CAfile', permissions, certs[0]).returncode != 0


@needs_openssl
def test_signatures_verify_against_the_permissions_ca(keystore, tmp_path):
    """Governance and permissions are S/MIME signed by the permissions CA, over their XML.

    The identity CA and a tampered document are refused.
    """
    permissions_ca = str(keystore / 'public' / 'permissions_ca.cert.pem')
    identity_ca = str(keystore / 'public' / 'identity_ca.cert.pem')
    signed = [(keystore / 'enclaves' / 'governance.p7s', keystore / 'enclaves' / 'governance.xml')]
    signed += [(_folder(keystore, e) / 'permissions.p7s', _folder(keystore, e) / 'permissions.xml')
               for e in _enclaves()]
    content = tmp_path / 'content'
    for p7s, xml in signed:
        result = _openssl('smime', '-verify', '-in', str(p7s), '-CAfile', permissions_ca,
                          '-text', '-out', str(content))
        assert result.returncode == 0, f'{p7s}: {result.stderr}'
        # S/MIME text signing canonicalises line ends to CRLF.
        assert content.read_bytes().replace(b'\r\n', b'\n') == xml.read_bytes()
    p7s = signed[-1][0]
    assert _openssl('smime', '-verify', '-in', str(p7s), '-CAfile', identity_ca,
                    '-text', '-out', os.devnull).returncode != 0
    tampered = tmp_path / 'tampered.p7s'
    tampered.write_bytes(p7s.read_bytes().replace(b'<default>DENY', b'<default>ALLOW', 1))
    assert tampered.read_bytes() != p7s.read_bytes()
    assert _openssl('smime', '-verify', '-in', str(tampered), '-CAfile', permissions_ca,
                    '-text', '-out', os.devnull).returncode != 0


def test_governance_enforces_authentication_encryption_and_access_control(keystore):
    """Only authenticated members join; every topic is access controlled and encrypted."""
    rule = ElementTree.parse(keystore / 'enclaves' / 'governance.xml').getroot().find(
        'domain_access_rules/domain_rule')
    assert [e.text for e in rule.findall('domains/id')] == [str(DOMAIN)]
    assert rule.findtext('allow_unauthenticated_participants') == 'false'
    assert rule.findtext('enable_join_access_control') == 'true'
    assert rule.findtext('discovery_protection_kind') == 'ENCRYPT'
    assert rule.findtext('liveliness_protection_kind') == 'ENCRYPT'
    assert rule.findtext('rtps_protection_kind') in ('SIGN', 'ENCRYPT')
    topic_rules = rule.findall('topic_access_rules/topic_rule')
    assert len(topic_rules) == 1 and topic_rules[0].findtext('topic_expression') == '*'
    for tag in ('enable_read_access_control', 'enable_write_access_control',
                'enable_discovery_protection', 'enable_liveliness_protection'):
        assert topic_rules[0].findtext(tag) == 'true', tag
    assert topic_rules[0].findtext('data_protection_kind') == 'ENCRYPT'
    assert topic_rules[0].findtext('metadata_protection_kind') in ('SIGN', 'ENCRYPT')


def _expected(node: str, namespace: str) -> dict[str, set[str]]:
    """DDS topics node needs, from its table entry: rt/ topics, rq/ rr/ service topics."""
    entry = with_builtins(GRAPH[node])
    publish, subscribe = {'ros_discovery_info'}, {'ros_discovery_info'}
    for kind, endpoints in (('pub', entry.publishes), ('sub', entry.subscribes),
                            ('serve', entry.serves), ('call', entry.calls)):
        for endpoint in endpoints:
            name = resolve(endpoint.bind({RELAY: RELAY_TOPIC}).name, node, namespace)
            if kind == 'pub':
                publish.add('rt' + name)
            elif kind == 'sub':
                subscribe.add('rt' + name)
            elif kind == 'serve':
                subscribe.add('rq' + name + 'Request')
                publish.add('rr' + name + 'Reply')
            else:
                publish.add('rq' + name + 'Request')
                subscribe.add('rr' + name + 'Reply')
    return {'publish': publish, 'subscribe': subscribe}


@pytest.mark.parametrize('namespace', ['/', 'r1'])
def test_permissions_grant_exactly_the_table(keystore, namespace):
    """Each node's grant: its subject, the domain, exactly its table entry, DENY otherwise."""
    for node in GRAPH:
        enclave = enclave_path(node, namespace)
        grant, topics = _grant(keystore, enclave)
        assert grant.get('name') == enclave
        assert grant.findtext('subject_name') == f'CN={enclave}'
        assert grant.findtext('default') == 'DENY'
        assert [e.text for e in grant.findall('allow_rule/domains/id')] == [str(DOMAIN)]
        not_after = datetime.datetime.fromisoformat(grant.findtext('validity/not_after'))
        cert = _cert(_folder(keystore, enclave) / 'cert.pem')
        assert abs(not_after - cert.not_valid_after_utc.replace(tzinfo=None)).total_seconds() < 2
        assert topics == _expected(node, namespace), node
        assert not any('*' in topic for kind in topics.values() for topic in kind)


def test_permissions_spot_checks(keystore):
    """Written out by hand: what a robot's nodes may and may not do."""
    _, tracker = _grant(keystore, '/facetrack_ros/r1/tracker')
    assert {'rt/r1/person_events', 'rt/r1/tracks', 'rt/diagnostics', 'rt/rosout',
            'rr/r1/tracker/get_parametersReply'} <= tracker['publish']
    assert {'rt/r1/detections', 'rt/r1/faces', 'rq/r1/tracker/set_parametersRequest',
            'rt/r1/known_people'} <= tracker['subscribe']
    assert 'rt/r1/image_raw' not in tracker['subscribe']
    assert 'rq/r1/backtrack_searchRequest' not in tracker['publish']
    _, history = _grant(keystore, '/facetrack_ros/r1/frame_history')
    assert {'rq/r1/backtrack_searchRequest', 'rq/r1/get_framesRequest',
            'rq/r1/frame_history/change_stateRequest', 'rt/r1/image_raw'} <= history['subscribe']
    assert {'rr/r1/backtrack_searchReply', 'rt/r1/frame_history/transition_event'} <= (
        history['publish'])
    _, camera = _grant(keystore, '/facetrack_ros/r1/camera')
    assert camera['subscribe'] == {'ros_discovery_info', 'rt/r1/usb_cam/image_raw'} | {
        t for t in camera['subscribe'] if t.startswith('rq/r1/camera/')}
    assert 'rt/r1/image_raw' in camera['publish']
    assert not any('transition_event' in t for t in camera['publish'])   # not a lifecycle node
    # Robots are apart, except for the fleet topics their fleet nodes share.
    for node in GRAPH:
        _, topics = _grant(keystore, enclave_path(node, 'r1'))
        assert not any('/r2/' in t for kind in topics.values() for t in kind), node
    fleet = ('rt/fleet/search_request', 'rt/fleet/search_result', 'rt/fleet/presence',
             'rt/fleet/people')
    for robot in ROBOTS:
        _, topics = _grant(keystore, enclave_path('fleet', robot))
        assert set(fleet) <= topics['publish'] and set(fleet) <= topics['subscribe']
    assert not any(t.startswith('rt/fleet/') for t in tracker['publish'] | tracker['subscribe'])


def test_operator_calls_services_and_reads_topics_only(keystore):
    """The operator calls every service of every robot and reads what the nodes publish.

    It publishes no data topic and serves only its own tools' services.
    """
    grant, topics = _grant(keystore, '/facetrack_ros/operator')
    assert grant.findtext('default') == 'DENY'
    for robot in ROBOTS:
        for node in GRAPH:
            expected = _expected(node, robot)
            calls = {'rq' + t[2:-len('Reply')] + 'Request' for t in expected['publish']
                     if t.startswith('rr')}
            assert calls <= topics['publish'], node
            reads = {t for t in expected['publish'] if t.startswith('rt')}
            assert reads <= topics['subscribe'], node
    assert {t for t in topics['publish'] if t.startswith('rt')} == {
        'rt/rosout', 'rt/parameter_events'}
    served = {t for t in topics['subscribe'] if t.startswith('rq')}
    assert served and all(t.startswith(('rq/_ros2cli_*/', 'rq/rqt_gui_py_node_*/'))
                          for t in served)
    assert 'rq/r1/backtrack_searchRequest' in topics['publish']
    assert 'rr/r1/backtrack_searchReply' in topics['subscribe']


def test_rerun_keeps_the_cas_and_renews_enclaves(keystore, tmp_path):
    """Adding a robot later keeps the CAs, so enclaves already on robots stay valid."""
    copy = tmp_path / 'ks'
    shutil.copytree(keystore, copy, symlinks=True)
    before = (copy / 'public' / 'identity_ca.cert.pem').read_bytes()
    old_cert = (_folder(copy, '/facetrack_ros/r1/tracker') / 'cert.pem').read_bytes()
    written = create_keystore(copy, ['r3'], domain_id=DOMAIN, days=DAYS)
    assert written == [enclave_path(node, 'r3') for node in GRAPH]
    assert (copy / 'public' / 'identity_ca.cert.pem').read_bytes() == before
    assert (_folder(copy, '/facetrack_ros/r1/tracker') / 'cert.pem').read_bytes() == old_cert
    _cert(_folder(copy, '/facetrack_ros/r3/tracker') / 'cert.pem').verify_directly_issued_by(
        _cert(copy / 'public' / 'identity_ca.cert.pem'))
    # Without a named relay topic the camera subscribes to nothing.
    _, camera = _grant(copy, '/facetrack_ros/r3/camera')
    assert not any(t.startswith('rt/') for t in camera['subscribe'])
    # Enclaves may not outlive the CAs they keep.
    with pytest.raises(ValueError, match='expires'):
        create_keystore(copy, ['r4'], domain_id=DOMAIN, days=5000)
    assert not (copy / 'enclaves' / 'facetrack_ros' / 'r4').exists()


@pytest.mark.parametrize('arguments, reason', [
    (['--robots', '1robot'], 'invalid namespace'),
    (['--days', '0'], 'days must be at least 1'),
    (['--domain-id', '300'], 'domain id'),
    (['--operator', 'bad/name'], 'invalid node name'),
])
def test_bad_options_are_refused_with_the_reason(tmp_path, arguments, reason):
    """A bad option is refused with the reason; nothing is written."""
    result = subprocess.run([executable('make_keystore'), str(tmp_path / 'ks'), *arguments],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and reason in result.stderr, result.stderr
    assert not (tmp_path / 'ks').exists()
