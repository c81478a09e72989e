#!/bin/bash
# servicevm's devstack plugin: enable it in local.conf with
#   enable_plugin servicevm <git url of servicevm> [branch]
# shellcheck shell=bash

# shellcheck source=devstack/lib/servicevm
source "$SERVICEVM_DIR/devstack/lib/servicevm"

if is_service_enabled servicevm-api servicevm-conductor; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing servicevm"
        install_servicevm
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring servicevm"
        configure_servicevm
        init_servicevm
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Starting servicevm"
        start_servicevm
    fi
    if [[ "$1" == "unstack" ]]; then
        stop_servicevm
    fi
    if [[ "$1" == "clean" ]]; then
        cleanup_servicevm
    fi
fi
