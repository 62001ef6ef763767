"""Third-party peers of the tests, installed from the package registries at test time."""
