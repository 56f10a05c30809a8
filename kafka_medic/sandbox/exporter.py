"""Prometheus JMX exporter configuration for sandbox nodes.

The same rules are what we recommend operators deploy on real brokers (README), so the metric
names that ``kafka_medic.monitor.metrics`` parses are the ones a production exporter serves.
Rules are regexes over ``domain<key=value, ...><>attribute``; the first match wins.
"""

from __future__ import annotations

JMX_EXPORTER_CONFIG = r"""
lowercaseOutputName: true
lowercaseOutputLabelNames: true
# Only the MBeans the rules use: walking every MBean makes a scrape take ~1 s on a small broker.
includeObjectNames:
  - "kafka.server:type=ReplicaManager,*"
  - "kafka.server:type=BrokerTopicMetrics,*"
  - "kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent"
  - "kafka.network:type=SocketServer,name=NetworkProcessorAvgIdlePercent"
  - "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=Produce"
  - "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=FetchConsumer"
  - "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=FetchFollower"
  - "kafka.network:type=RequestMetrics,name=RequestQueueTimeMs,request=Produce"
  - "kafka.network:type=RequestMetrics,name=RemoteTimeMs,request=Produce"
  - "kafka.controller:type=KafkaController,*"
  - "kafka.log:type=LogManager,name=OfflineLogDirectoryCount"
rules:
  - pattern: 'kafka.server<type=ReplicaManager, name=(UnderReplicatedPartitions|UnderMinIsrPartitionCount|AtMinIsrPartitionCount|OfflineReplicaCount|PartitionCount|LeaderCount)><>Value'
    name: kafka_server_replicamanager_$1
    type: GAUGE
  - pattern: 'kafka.server<type=ReplicaManager, name=(IsrShrinksPerSec|IsrExpandsPerSec)><>(Count|OneMinuteRate)'
    name: kafka_server_replicamanager_$1_$2
    type: GAUGE
  - pattern: 'kafka.server<type=BrokerTopicMetrics, name=(BytesInPerSec|BytesOutPerSec|MessagesInPerSec|ReplicationBytesInPerSec|ReplicationBytesOutPerSec)><>(Count|OneMinuteRate)'
    name: kafka_server_brokertopicmetrics_$1_$2
    type: GAUGE
  - pattern: 'kafka.server<type=BrokerTopicMetrics, name=(BytesInPerSec|BytesOutPerSec|MessagesInPerSec), topic=(.+)><>(Count|OneMinuteRate)'
    name: kafka_server_brokertopicmetrics_topic_$1_$3
    labels:
      topic: '$2'
    type: GAUGE
  - pattern: 'kafka.server<type=KafkaRequestHandlerPool, name=RequestHandlerAvgIdlePercent><>(OneMinuteRate|MeanRate)'
    name: kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_$1
    type: GAUGE
  - pattern: 'kafka.network<type=SocketServer, name=NetworkProcessorAvgIdlePercent><>Value'
    name: kafka_network_socketserver_networkprocessoravgidlepercent
    type: GAUGE
  - pattern: 'kafka.network<type=RequestMetrics, name=TotalTimeMs, request=(Produce|FetchConsumer|FetchFollower)><>(50thPercentile|99thPercentile|Mean)'
    name: kafka_network_requestmetrics_totaltimems_$2
    labels:
      request: '$1'
    type: GAUGE
  - pattern: 'kafka.network<type=RequestMetrics, name=RequestQueueTimeMs, request=(Produce)><>(99thPercentile|Mean)'
    name: kafka_network_requestmetrics_requestqueuetimems_$2
    labels:
      request: '$1'
    type: GAUGE
  # RemoteTimeMs: the part of a produce spent waiting for followers (acks=all), not this broker's own
  - pattern: 'kafka.network<type=RequestMetrics, name=RemoteTimeMs, request=(Produce)><>(99thPercentile|Mean)'
    name: kafka_network_requestmetrics_remotetimems_$2
    labels:
      request: '$1'
    type: GAUGE
  - pattern: 'kafka.controller<type=KafkaController, name=(ActiveControllerCount|OfflinePartitionsCount|FencedBrokerCount|ActiveBrokerCount|GlobalPartitionCount|GlobalTopicCount|PreferredReplicaImbalanceCount)><>Value'
    name: kafka_controller_kafkacontroller_$1
    type: GAUGE
  - pattern: 'kafka.log<type=LogManager, name=(OfflineLogDirectoryCount)><>Value'
    name: kafka_log_logmanager_$1
    type: GAUGE
"""
