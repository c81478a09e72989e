import pbr.version

version_info = pbr.version.VersionInfo('servicevm')
version_string = version_info.version_string
