"""The cookiecutter templates that ``skil-sdk new`` renders (shipped as package data)."""
