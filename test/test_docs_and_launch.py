"""Documentation, parameter file and launch file agree with the nodes' declarations."""

import ast
import importlib.util
import subprocess
import sys

import yaml


def _load_script(repo_dir, name: str):
    spec = importlib.util.spec_from_file_location(name, repo_dir / 'scripts' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_parameter_reference_is_current(repo_dir):
    """The README's parameter tables are exactly what the declarations generate."""
    reference = _load_script(repo_dir, 'param_reference')
    readme = (repo_dir / 'README.md').read_text()
    section = readme.split(reference.BEGIN)[1].split(reference.END)[0]
    assert section.strip() == reference.markdown().strip(), (
        'README parameter reference is stale: run scripts/param_reference.py --write')


def test_yaml_sets_only_declared_parameters(repo_dir):
    """Every key of config/facetrack.yaml is a declared parameter of that node."""
    declared = _load_script(repo_dir, 'param_reference').node_parameters()
    config = yaml.safe_load((repo_dir / 'config' / 'facetrack.yaml').read_text())
    assert {key.split('/')[-1] for key in config} == set(declared)
    for key, section in config.items():
        names = {spec.name for spec in declared[key.split('/')[-1]]}
        unknown = set(section['ros__parameters']) - names
        assert not unknown, f'{key} sets undeclared parameters {unknown}'


def test_launch_file_arguments_and_nodes(repo_dir):
    """Every launch argument has a description; every node and override is declared.

    A static check, in a second; test/launch runs the launch files for real.
    """
    declared = _load_script(repo_dir, 'param_reference').node_parameters()
    tree = ast.parse((repo_dir / 'launch' / 'facetrack.launch.py').read_text())
    for launch_file in ('facetrack.launch.py', 'fleet.launch.py'):
        body = ast.parse((repo_dir / 'launch' / launch_file).read_text()).body
        arguments = next(node.value for node in body if isinstance(node, ast.Assign)
                         and node.targets[0].id == 'ARGUMENTS')
        for key, value in zip(arguments.keys, arguments.values):
            default, description = ast.literal_eval(value)
            assert len(description) > 15, f'{launch_file}: {key.value} lacks a description'
    by_node = {name: {spec.name: spec for spec in specs} for name, specs in declared.items()}
    launched = {}
    for call in ast.walk(tree):
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id == 'node'):
            name = call.args[0].value
            launched[name] = {k.value for k in call.args[1].keys}
            for key, value in zip(call.args[1].keys, call.args[1].values):
                # launch_ros reads substituted values as YAML; text needs value_type=str.
                if isinstance(by_node[name][key.value].default, str):
                    assert _is_text_value(value), f'{name}.{key.value} needs value_type=str'

    assert set(launched) == set(declared)
    for name, overrides in launched.items():
        names = {spec.name for spec in declared[name]}
        assert overrides <= names, f'launch sets undeclared {name} parameters'


def _is_text_value(node: ast.expr) -> bool:
    """Return whether a launch parameter expression is typed as text (value_type=str)."""
    if isinstance(node, ast.Subscript):     # text['source']: built as ParameterValue(str)
        return isinstance(node.value, ast.Name) and node.value.id == 'text'
    if isinstance(node, ast.Call):
        name = getattr(node.func, 'id', '')
        if name == 'folder':
            return True
        return name == 'ParameterValue' and any(
            k.arg == 'value_type' and getattr(k.value, 'id', '') == 'str' for k in node.keywords)
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def test_ros_arguments_keep_text_parameters_text():
    """-p values are YAML: a numeric-looking text value must be quoted."""
    from facetrack_ros.graph_runner import ros_arguments
    args = ros_arguments(None, {'source': '0', 'loop': True, 'rate': 0.5,
                                'wait_for_nodes': ('detector', '7')}, 'r1')
    assert args == ['--ros-args', '-r', '__ns:=/r1', '-p', 'source:="0"', '-p', 'loop:=true',
                    '-p', 'rate:=0.5', '-p', 'wait_for_nodes:=["detector", "7"]']
    assert [yaml.safe_load(a.split(':=')[1]) for a in args[4::2]] == [
        '0', True, 0.5, ['detector', '7']]


def test_the_package_never_imports_the_launch_and_cli_tools(repo_dir, tmp_path):
    """Every module of the installed package imports without launch, launch_ros or ros2cli.

    Robots with an apt ROS install have these tools; here they are test tools only.
    """
    tools = ('launch', 'launch_ros', 'launch_testing', 'launch_testing_ros', 'launch_pytest',
             'ros2cli', 'ros2launch', 'composition_interfaces', 'osrf_pycommon')
    modules = sorted('.'.join(path.relative_to(repo_dir).with_suffix('').parts)
                     for path in (repo_dir / 'facetrack_ros').rglob('*.py'))
    script = (f'import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n'
              f'print(sorted({{m.split(".")[0] for m in sys.modules}} & {set(tools)!r}))')
    # Run outside the checkout, so that the installed package is the one imported.
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '[]', f'imported at run time: {done.stdout}'
