import Glibc

// One binary serves as PID 1 and as the entry point of Kiln's own services (`kiln-init service NAME …`),
// so the statically linked Swift runtime is in the image once.
let arguments = CommandLine.arguments
if arguments.count >= 2, arguments[1] == "service" {
    exit(ServiceEntry.run(Array(arguments.dropFirst(2))))
}
if arguments.count >= 2, XenHotplug.actions.contains(arguments[1]), getenv("XENBUS_PATH") != nil {
    // No closure here: top-level code is main-actor isolated, and a closure written in it would link Swift's
    // concurrency runtime and Dispatch into kiln-init (+0.9 MB) for an executor check.
    exit(XenHotplug.run(action: arguments[1]))
}
guard getpid() == 1 else {
    FileHandleless.stderr("kiln-init: this is the appliance's PID 1; run it as /init in a Kiln image, or `kiln-init service NAME`\n")
    exit(2)
}
Init.boot()
