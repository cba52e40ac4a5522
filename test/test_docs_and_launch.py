"""Documentation, parameter file and launch file agree with the nodes' declarations."""

import ast
import importlib.util

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

    ros2launch is not installable here, so the launch file is checked statically.
    """
    declared = _load_script(repo_dir, 'param_reference').node_parameters()
    tree = ast.parse((repo_dir / 'launch' / 'facetrack.launch.py').read_text())
    arguments = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                     and node.targets[0].id == 'ARGUMENTS')
    for key, value in zip(arguments.keys, arguments.values):
        default, description = ast.literal_eval(value)
        assert len(description) > 15, f'launch argument {key.value} lacks a description'
    launched = {}
    for call in ast.walk(tree):
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id == 'node'):
            name = call.args[0].value
            launched[name] = {k.value for k in call.args[1].keys}
    assert set(launched) == set(declared)
    for name, overrides in launched.items():
        names = {spec.name for spec in declared[name]}
        assert overrides <= names, f'launch sets undeclared {name} parameters'
