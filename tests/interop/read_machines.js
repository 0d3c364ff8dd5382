#!/usr/bin/env node
// Interoperability probe of the simline OPC UA server with an independent client stack (node-opcua).
//
// Usage: node tests/interop/read_machines.js opc.tcp://127.0.0.1:4840/simline
//
// Connects without security (SecurityPolicy None, anonymous), finds the simline namespace by its URI, browses
// Objects/Machines and, through browse paths (not hard-coded NodeIds), reads every machine's Monitoring.State
// and the CurrentState of its MachineryItemState and MachineryOperationMode. Prints one JSON object on stdout:
//   {"endpoint": ..., "namespaceUri": ..., "namespaceIndex": n,
//    "machines": [{"name", "nodeId", "state", "itemState", "operationMode"}, ...]}
// Exit status: 0 on success, 1 on an OPC UA or usage error, 2 when the whole run takes longer than the timeout.
"use strict";

// node-opcua logs progress (e.g. "Creating default certificate") with console.log: keep stdout for the JSON.
const printJson = process.stdout.write.bind(process.stdout);
console.log = console.info = (...args) => console.error(...args);

const path = require("node:path");
const {
    AttributeIds,
    BrowseDirection,
    MessageSecurityMode,
    NodeClass,
    OPCUACertificateManager,
    OPCUAClient,
    SecurityPolicy,
    StatusCodes,
    makeBrowsePath,
} = require("node-opcua");

const NAMESPACE = "urn:simline:line";
const TIMEOUT_MS = Number(process.env.SIMLINE_INTEROP_TIMEOUT_MS || 30000);
// node-opcua creates a client certificate even for SecurityPolicy None; keep it (and its PKI) next to the
// installed packages instead of in ~/.config, so that it is made once per `npm ci` and never lands in git.
const PKI = process.env.SIMLINE_INTEROP_PKI || path.join(__dirname, "node_modules", ".cache", "simline-interop-pki");

function fail(message) {
    process.stderr.write(`read_machines: ${message}\n`);
    process.exit(1);
}

async function resolve(session, start, path) {
    const [result] = await session.translateBrowsePath([makeBrowsePath(start, path)]);
    if (!result.statusCode.equals(StatusCodes.Good) || result.targets.length !== 1) {
        throw new Error(`browse path ${path} from ${start.toString()}: ${result.statusCode.toString()}`);
    }
    return result.targets[0].targetId;
}

async function browseAll(session, nodeId) {
    let result = await session.browse({
        nodeId,
        referenceTypeId: "HierarchicalReferences",
        browseDirection: BrowseDirection.Forward,
        includeSubtypes: true,
        nodeClassMask: NodeClass.Object,
        resultMask: 0x3f,
    });
    const references = [...(result.references || [])];
    while (result.continuationPoint && result.continuationPoint.length > 0) {
        result = await session.browseNext(result.continuationPoint, false);
        references.push(...(result.references || []));
    }
    if (!result.statusCode.equals(StatusCodes.Good)) {
        throw new Error(`browse ${nodeId.toString()}: ${result.statusCode.toString()}`);
    }
    return references;
}

function text(dataValue, what) {
    if (!dataValue.statusCode.equals(StatusCodes.Good)) {
        throw new Error(`read ${what}: ${dataValue.statusCode.toString()}`);
    }
    const value = dataValue.value.value;
    return value !== null && typeof value === "object" && "text" in value ? value.text : value;
}

async function main(endpoint) {
    const clientCertificateManager = new OPCUACertificateManager({
        rootFolder: PKI,
        automaticallyAcceptUnknownCertificate: true,
    });
    const client = OPCUAClient.create({
        clientCertificateManager,
        applicationName: "simline-interop-node-opcua",
        endpointMustExist: false,
        securityMode: MessageSecurityMode.None,
        securityPolicy: SecurityPolicy.None,
        connectionStrategy: { maxRetry: 2, initialDelay: 200, maxDelay: 1000 },
        requestedSessionTimeout: 60000,
    });
    await client.connect(endpoint);
    try {
        const session = await client.createSession(); // anonymous
        try {
            const namespaces = await session.readNamespaceArray();
            const ns = namespaces.indexOf(NAMESPACE);
            if (ns < 0) {
                throw new Error(`namespace ${NAMESPACE} not in the server's NamespaceArray ${JSON.stringify(namespaces)}`);
            }
            const folder = await resolve(session, "RootFolder", `/Objects/${ns}:Machines`);
            const machines = [];
            for (const ref of await browseAll(session, folder)) {
                const node = ref.nodeId;
                const paths = [
                    `/${ns}:Monitoring/${ns}:State`,
                    `/${ns}:MachineryBuildingBlocks/${ns}:MachineryItemState/${ns}:CurrentState`,
                    `/${ns}:MachineryBuildingBlocks/${ns}:MachineryOperationMode/${ns}:CurrentState`,
                ];
                const ids = [];
                for (const path of paths) {
                    ids.push(await resolve(session, node, path));
                }
                const values = await session.read(ids.map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })));
                machines.push({
                    name: ref.browseName.name,
                    namespaceIndex: ref.browseName.namespaceIndex,
                    nodeId: node.toString(),
                    state: text(values[0], `${ref.browseName.name} ${paths[0]}`),
                    itemState: text(values[1], `${ref.browseName.name} ${paths[1]}`),
                    operationMode: text(values[2], `${ref.browseName.name} ${paths[2]}`),
                });
            }
            return { endpoint, namespaceUri: NAMESPACE, namespaceIndex: ns, machines };
        } finally {
            await session.close();
        }
    } finally {
        await client.disconnect();
    }
}

const endpoint = process.argv[2];
if (!endpoint || !endpoint.startsWith("opc.tcp://")) {
    fail("usage: node read_machines.js opc.tcp://host:port/path");
}
const timer = setTimeout(() => {
    process.stderr.write(`read_machines: no answer within ${TIMEOUT_MS} ms from ${endpoint}\n`);
    process.exit(2);
}, TIMEOUT_MS);
main(endpoint).then(
    (result) => {
        clearTimeout(timer);
        printJson(`${JSON.stringify(result)}\n`);
        process.exit(0);
    },
    (error) => {
        clearTimeout(timer);
        fail(error && error.stack ? error.stack : String(error));
    },
);
